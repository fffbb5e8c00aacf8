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


def _pairs(tmp_path, names: list[str]):
    for name in names:
        Image.new("RGB", (8, 8), "blue").save(tmp_path / name)
    rows = [(name, f"{name} {n}") for name in names for n in ("one", "two")]
    pd.DataFrame(rows, columns=["image", "caption"]).to_csv(tmp_path / "pairs.csv", index=False)
    return load_pairs(str(tmp_path / "pairs.csv"))


def test_a_held_out_share_keeps_each_pictures_captions_together_and_the_same_pictures_every_time(tmp_path):
    names = [f"p{n:02d}.png" for n in range(40)]
    train, held = _pairs(tmp_path, names).hold_out(0.25, most=1000)
    assert len(held.images) == 10 and len(train.images) == 30 and not set(held.images) & set(train.images)
    for part in (train, held):  # every caption still names its own picture
        owners = [part.images[i].rsplit("/", 1)[-1] for i in part.caption_image]
        assert [cap.split()[0] for cap in part.captions] == owners
        assert len(part.captions) == 2 * len(part.images)
    # Chosen by the pictures' paths, not their order in the file: the rows reversed hold out the same pictures.
    _, again = _pairs(tmp_path, names[::-1]).hold_out(0.25, most=1000)
    assert sorted(again.images) == sorted(held.images)
    assert len(_pairs(tmp_path, names).hold_out(0.25, most=3)[1].images) == 3


def test_pairs_too_few_to_spare_a_picture_are_all_trained_on(tmp_path):
    pairs = _pairs(tmp_path, ["a.png", "b.png", "c.png"])
    train, held = pairs.hold_out(0.1, most=1000)
    assert held is None and train is pairs
    train, held = _pairs(tmp_path, ["a.png", "b.png"]).hold_out(0.9, most=1000)
    assert len(train.images) == 1 and len(held.images) == 1  # never all of them
