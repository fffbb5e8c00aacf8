import json

import pytest

from mmsearch import settings
from mmsearch.builder.pipeline import build_index
from mmsearch.evaluate import compare
from mmsearch.search.results import QueryError
from mmsearch.search.searcher import Searcher


@pytest.fixture(scope="module")
def pair(tmp_path_factory, demo_manifest, tiny_two_tower_dir, other_two_tower_dir):
    tmp = tmp_path_factory.mktemp("compare")
    out = []
    for name, model in (("a", tiny_two_tower_dir), ("b", other_two_tower_dir)):
        cfg = settings.Settings(
            data_dir=tmp / "data",
            catalog=str(demo_manifest),
            model=f"two-tower:{model}",
            index=tmp / name,
            workers=1,
            duplicate_threshold=0,
        )
        build_index(cfg)
        out.append(Searcher.open(cfg))
    return out


def test_both_models_share_one_feast_store_and_answer_separately(pair):
    a, b = pair
    assert a.store.data_dir == b.store.data_dir
    ra, rb = compare.compare(pair, "red mug", None, 5)
    assert len(ra) == len(rb) == 5 and [r.item_id for r in ra] != [r.item_id for r in rb]
    with pytest.raises(QueryError):
        compare.compare(pair, "  ", None, 5)


def test_report_table_prefers_the_index_report(pair):
    a, b = pair
    (a.index.path / compare.REPORT_FILE).write_text(
        json.dumps({"text_to_image": {"R@1": 0.5, "R@5": 0.75, "R@10": 1.0}, "image_to_text": {"R@1": 0.25}})
    )
    rows = compare.report_rows(pair)
    assert rows[0][7:] == ["50.0%", "75.0%", "100.0%", "25.0%"] and rows[0][2].endswith("evaluation.json")
    assert rows[1][2].startswith("none") and rows[1][3] == "–"
    assert len(rows[0]) == len(compare.COLUMNS)
