"""Past one machine on existing engines: encoding with Ray Data, and Redis as Feast's online store."""

import os

import numpy as np
import pytest
from conftest import ask

from mmsearch import settings
from mmsearch.builder import pipeline as build
from mmsearch.encode.encoders import load_encoder
from mmsearch.encode.files import encode_image_files
from mmsearch.search.searcher import Searcher
from mmsearch.store import readahead
from mmsearch.store.errors import StoreUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_ray_data_encoding_equals_the_single_process_path(demo_manifest, tiny_two_tower_dir, tmp_path):
    ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")
    from mmsearch.encode.ray_data import encode_with_ray
    from mmsearch.ingest import catalog

    items = catalog.load_catalog(str(demo_manifest), tmp_path).items
    paths = items["image"].tolist()[:40] + [str(tmp_path / "missing.png")]
    (tmp_path / "missing.png").write_bytes(b"not a picture")
    cfg = settings.Settings(model=f"two-tower:{tiny_two_tower_dir}", ray="local", batch_size=16)
    encoder = load_encoder(cfg.model, "cpu")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        got, failed = encode_with_ray(cfg, paths, actors=2)
    finally:
        ray.shutdown()
    want, want_failed = encode_image_files(encoder, paths, batch_size=16, workers=0)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert set(failed) == set(want_failed) == {40}


@pytest.fixture
def redis_url(tmp_path):
    from conftest import RedisServer

    pytest.importorskip("redis") if not os.environ.get("CI") else None
    server = RedisServer(tmp_path)
    yield server.url, server.client
    server.stop()


def test_redis_serves_as_the_online_store(redis_url, demo_manifest, tiny_two_tower_dir, tmp_path):
    url, client = redis_url
    cfg = settings.Settings(
        data_dir=tmp_path / "data",
        catalog=str(demo_manifest),
        model=f"two-tower:{tiny_two_tower_dir}",
        index=tmp_path / "ix",
        online_store=url,
        workers=0,
        duplicate_threshold=0,
        reload_interval=0,
    )
    built = build.build_index(cfg)
    assert built.manifest["online_store"] == url and client.dbsize() > 0
    assert not (tmp_path / "data" / "feast" / "online_store.db").exists()
    searcher = Searcher.open(settings.Settings(data_dir=tmp_path / "data", model=cfg.model, index=tmp_path / "ix"))
    results = ask(searcher, q="red striped t-shirt", k=5, mode="keyword")
    truth = dict(zip(built.items["item_id"], built.items["title"]))
    assert len(results) == 5 and all(r.title == truth[r.item_id] for r in results)
    assert searcher.index.held_by(searcher.store)
    assert readahead.listing_pages(searcher.store) == 0  # Redis holds everything in memory: nothing to read ahead
    client.flushall()  # the online store lost its rows: listings already read stay (content-keyed, never stale) ...
    assert [r.title for r in ask(searcher, q="red striped t-shirt", k=2, mode="keyword")] == [
        truth[r.item_id] for r in results[:2]
    ]
    serving = settings.Settings(data_dir=tmp_path / "data", model=cfg.model, index=tmp_path / "ix")
    fresh = Searcher.open(serving)  # ... and the rest are said to be lost (503 over HTTP), never shown blank
    assert not fresh.index.held_by(fresh.store)
    with pytest.raises(StoreUnavailable, match="lacks the listings"):
        ask(fresh, q="red striped t-shirt", k=2, mode="keyword")
    said = []
    repaired = build.build_index(cfg, progress=lambda _, message: said.append(message))  # the catalog is unchanged
    assert repaired.manifest["encoded"] == 0 and any("back to the online store, nothing encoded" in m for m in said), (
        said
    )
    again = Searcher.open(serving)
    assert again.index.held_by(again.store)
    assert [r.title for r in ask(again, q="red striped t-shirt", k=5, mode="keyword")] == [r.title for r in results]
