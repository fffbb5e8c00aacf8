"""Presets (assets/presets.json): the fashion preset's column mapping, run on a local dataset of the same schema."""

import pandas as pd
import pytest
from conftest import ask

from mmsearch import settings
from mmsearch.ingest.catalog import CatalogError, parse_renames

COLOURS = {"Navy Blue": (20, 30, 90), "Red": (200, 30, 30), "White": (245, 245, 245), "Black": (20, 20, 20)}
TYPES = ["Tshirts", "Shirts", "Casual Shoes", "Watches"]


@pytest.fixture(scope="module")
def fashion_like(tmp_path_factory):
    """A save_to_disk folder with the columns of ashraq/fashion-product-images-small."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rows = []
    for i in range(16):
        colour = list(COLOURS)[i % 4]
        kind = TYPES[(i // 4) % 4]
        rows.append(
            {
                "id": 15970 + i,
                "gender": "Men" if i % 2 else "Women",
                "masterCategory": "Apparel" if kind != "Watches" else "Accessories",
                "subCategory": "Topwear" if "shirt" in kind.lower() else "Other",
                "articleType": kind,
                "baseColour": colour,
                "season": "Summer",
                "year": 2012.0,
                "usage": "Casual",
                "productDisplayName": f"Turtle {colour} {kind} {i}",
                "image": Image.new("RGB", (60, 80), COLOURS[colour]),
            }
        )
    ds = datasets.Dataset.from_list(rows)
    folder = tmp_path_factory.mktemp("fashion") / "fashion-product-images-small"
    ds.save_to_disk(str(folder))
    return folder


def test_the_fashion_preset_names_the_dataset_and_model_and_yields_to_flags_and_env():
    cfg = settings.from_env({}, preset="fashion")
    assert cfg.catalog == "hf:ashraq/fashion-product-images-small"
    assert cfg.model == "clip:ViT-B-32/laion2b_s34b_b79k" and cfg.hf_text_column == "productDisplayName"
    env = settings.from_env({"MMSEARCH_PRESET": "fashion", "MMSEARCH_MODEL": "demo"}, catalog="hf:/x")
    assert env.model == "demo" and env.catalog == "hf:/x" and env.hf_id_column == "id"
    with pytest.raises(ValueError, match="unknown preset 'shoes'; the presets are fashion"):
        settings.from_env({}, preset="shoes")


def test_column_renames_are_checked():
    renames = parse_renames("articleType:category, baseColour:colour")
    assert renames == {"articleType": "category", "baseColour": "colour"}
    with pytest.raises(CatalogError, match="FROM:TO"):
        parse_renames("articleType")
    with pytest.raises(CatalogError, match="not item_id"):
        parse_renames("id:item_id")


def test_a_fashion_schema_dataset_builds_and_searches_with_its_columns_mapped(
    fashion_like, tmp_path, tiny_two_tower_dir
):
    from mmsearch.builder.pipeline import build_index
    from mmsearch.search.searcher import Searcher

    cfg = settings.from_env(
        {},
        preset="fashion",
        catalog=f"hf:{fashion_like}",
        model=f"two-tower:{tiny_two_tower_dir}",  # the preset's CLIP weights need the network
        data_dir=tmp_path / "data",
        index=tmp_path / "ix",
        workers=1,
        duplicate_threshold=0.0,
    )
    built = build_index(cfg)
    assert built.manifest["item_count"] == 16
    items = pd.read_parquet(tmp_path / "ix" / "items.parquet")
    assert {"category", "colour", "department", "subcategory", "usage"} <= set(items.columns)
    assert "15970" in set(items["item_id"].astype(str))
    searcher = Searcher.open(cfg)
    hits = ask(searcher, q="red tshirts", k=4, filters="category=Tshirts; colour=Red", mode="hybrid")
    assert hits and all(h.category == "Tshirts" and h.metadata.get("colour") == "Red" for h in hits)
    assert hits[0].title.startswith("Turtle Red Tshirts")
