"""Image-caption pairs from a captions file: a picture that cannot be read is left out with its reason before any
training starts (it used to stop a run at its first batch, naming no file)."""

import pandas as pd
import pytest
from PIL import Image

from mmsearch.ingest.catalog import CatalogError
from mmsearch.ingest.pairs import load_pairs


def test_unreadable_pictures_are_left_out_and_named(tmp_path, capsys):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    (tmp_path / "entities.svg").write_text(
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "y">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">&x;</svg>'
    )
    rows = [("red.png", "a red square"), ("broken.png", "a lost picture"), ("entities.svg", "a risky drawing")]
    rows += [("red.png", "something red"), ("missing.png", "nothing")]
    pd.DataFrame(rows, columns=["image", "caption"]).to_csv(tmp_path / "pairs.csv", index=False)

    pairs = load_pairs(str(tmp_path / "pairs.csv"))
    assert pairs.images == [str(tmp_path / "red.png")]
    assert pairs.captions == ["a red square", "something red"] and list(pairs.caption_image) == [0, 0]
    said = capsys.readouterr().err
    assert "3 picture(s) left out, they cannot be read" in said
    assert "broken.png: not a readable image" in said and "entities.svg: an SVG that does not render" in said


def test_a_file_with_no_readable_picture_is_refused(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    pd.DataFrame([("broken.png", "a lost picture")], columns=["image", "caption"]).to_csv(
        tmp_path / "p.csv", index=False
    )
    with pytest.raises(CatalogError, match="no readable picture among its rows"):
        load_pairs(str(tmp_path / "p.csv"))
