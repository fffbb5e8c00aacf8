import numpy as np
import pandas as pd
import pytest
from conftest import write_idx

from mmsearch.ingest.catalog import CatalogError, load_catalog
from mmsearch.ingest.datasets import fashion_mnist
from mmsearch.settings import Settings


def test_idx_files_read_back_as_written(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert (fashion_mnist.read_idx(write_idx(tmp_path / "x-idx3-ubyte.gz", array)) == array).all()


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((4, 28, 28)))
    import gzip

    data = gzip.decompress(path.read_bytes())
    (tmp_path / "short").write_bytes(data[:-10])
    with pytest.raises(CatalogError, match="truncated"):
        fashion_mnist.read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world, not an idx file")
    with pytest.raises(CatalogError, match="not an idx file"):
        fashion_mnist.read_idx(tmp_path / "text")


def test_the_catalog_names_each_photo_by_split_and_number_with_its_published_category(small_fashion_mnist, tmp_path):
    catalog = load_catalog("fashion-mnist", tmp_path, settings=Settings(fashion_mnist_dir=small_fashion_mnist))
    items = catalog.items
    assert len(items) == 80 and not catalog.skipped
    assert items["item_id"].iloc[0] == "fmnist-test-00000" and items["item_id"].iloc[-1] == "fmnist-test-00079"
    assert set(items["category"]) == set(fashion_mnist.CATEGORIES)
    assert (items["title"] == items["category"]).all()
    first = items.iloc[0]
    from PIL import Image

    with Image.open(first["image"]) as img:
        assert img.size == (28, 28) and img.mode == "L"
    # A second read reuses the written manifest and pictures.
    again = load_catalog("fashion-mnist", tmp_path, settings=Settings(fashion_mnist_dir=small_fashion_mnist))
    pd.testing.assert_frame_equal(again.items, items)


def test_the_training_split_and_bad_specs(small_fashion_mnist, tmp_path):
    train = load_catalog("fashion-mnist:train", tmp_path, settings=Settings(fashion_mnist_dir=small_fashion_mnist))
    assert len(train.items) == 400 and train.items["item_id"].iloc[0] == "fmnist-train-00000"
    with pytest.raises(CatalogError, match="fashion-mnist:train"):
        load_catalog("fashion-mnist:validation", tmp_path, settings=Settings(fashion_mnist_dir=small_fashion_mnist))


def test_without_the_package_or_the_hub_the_error_says_how_to_install_it(tmp_path):
    with pytest.raises(CatalogError, match="apt-get install dataset-fashion-mnist"):
        load_catalog("fashion-mnist", tmp_path / "data", settings=Settings(fashion_mnist_dir=tmp_path / "nothing-here"))
    assert not (tmp_path / "data" / "fashion-mnist" / "test" / "items.csv").exists()
