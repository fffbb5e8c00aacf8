import pytest
from PIL import Image

from mmsearch import config
from mmsearch.build import build_index
from mmsearch.search import QueryError, Searcher


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, demo_manifest, tiny_two_tower_dir):
    tmp = tmp_path_factory.mktemp("search")
    cfg = config.Config(data_dir=tmp / "data", catalog=str(demo_manifest), model=f"two-tower:{tiny_two_tower_dir}",
                        index=tmp / "ix", workers=1, max_query_chars=50, max_upload_pixels=1_000_000)
    build_index(cfg)
    return Searcher.open(cfg)


def test_text_search_returns_k_sorted_results_with_metadata(searcher):
    results = searcher.search_text("  red striped t-shirt ", k=7)
    assert len(results) == 7
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    first = results[0]
    assert first.title and first.image.endswith(".jpg") and "colour" in first.metadata and first.category
    assert first.caption().startswith(f"{first.score:.3f} · {first.title}") and first.to_dict()["item_id"] == first.item_id


@pytest.mark.parametrize("query,message", [("", "Type something"), ("   ", "Type something"),
                                           ("x" * 51, "the limit is 50")])
def test_bad_text_queries_are_refused_with_a_message(searcher, query, message):
    with pytest.raises(QueryError, match=message):
        searcher.search_text(query)


def test_bad_uploads_and_k_are_refused(searcher, tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(QueryError, match="cannot be used as an image"):
        searcher.search_image(str(tmp_path / "a.pdf"))
    Image.new("RGB", (2000, 1000)).save(tmp_path / "big.png")
    with pytest.raises(QueryError, match="too large"):
        searcher.search_image(str(tmp_path / "big.png"))
    with pytest.raises(QueryError, match="Upload an image"):
        searcher.search_image(None)
    with pytest.raises(QueryError, match="between 1 and"):
        searcher.search_text("mug", k=0)


def test_image_search_accepts_odd_modes(searcher):
    results = searcher.search_image(Image.new("RGBA", (30, 30), (0, 0, 255, 128)), k=3)
    assert len(results) == 3
