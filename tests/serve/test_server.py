"""The service's guards in-process: rate limits, the queue bound, access control, faults of the feature store and
the index, and concurrent searches. The real-server checks of the same routes are in test_api.py."""

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ask
from fastapi.testclient import TestClient

from mmsearch import settings
from mmsearch.builder.pipeline import build_index
from mmsearch.search.searcher import Searcher
from mmsearch.serve import auth, guard
from mmsearch.service import create_app
from mmsearch.store import readahead
from mmsearch.store.errors import StoreUnavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(small_index, tmp_path_factory):
    """The shared small index, with this module's own data directory for the searches and grades its apps keep
    (the feature store stays where the index's manifest says)."""
    return settings.replace(small_index, data_dir=tmp_path_factory.mktemp("service"))


def _client(cfg: settings.Settings, **changes) -> tuple[TestClient, Searcher]:
    searcher = Searcher.open(settings.replace(cfg, **changes))
    return TestClient(create_app(searcher)), searcher


def test_token_buckets_allow_a_burst_then_the_rate():
    buckets = guard.TokenBuckets(rate=5, burst=3)
    for _ in range(3):
        buckets.take("a")
    with pytest.raises(guard.Busy) as refused:
        buckets.take("a")
    assert refused.value.reason == "rate" and 0 < refused.value.retry_after <= 0.2
    buckets.take("b")  # another client has its own bucket
    time.sleep(0.25)
    buckets.take("a")  # refilled at 5 a second
    guard.TokenBuckets(rate=0).take("a")  # 0: no limit


def test_the_gate_refuses_past_its_queue_instead_of_waiting():
    async def scenario():
        gate = guard.SearchQueue(concurrency=1, max_queue=1)
        release = asyncio.Event()

        async def hold():
            async with gate:
                await release.wait()

        first = asyncio.create_task(hold())
        await asyncio.sleep(0)
        second = asyncio.create_task(hold())  # waits: the queue has room for one
        await asyncio.sleep(0)
        with pytest.raises(guard.Busy, match="busy"):
            async with gate:
                pass
        release.set()
        await asyncio.gather(first, second)
        async with gate:  # free again
            pass

    asyncio.run(scenario())


def test_auth_parsing_and_checks():
    assert auth.parse_auth("") is None
    with pytest.raises(ValueError, match="user:password"):
        auth.parse_auth("justapassword")
    creds = auth.parse_auth("alice:s3:cret")
    assert creds == (("alice", "s3:cret"),)
    assert auth.authorized("Bearer s3:cret", creds) and auth.authorized("Basic YWxpY2U6czM6Y3JldA==", creds)
    assert not auth.authorized("Bearer wrong", creds) and not auth.authorized(None, creds)
    assert not auth.authorized("Basic !!!", creds) and auth.authorized(None, None)
    raters = auth.parse_auth("alice:pw1, bob:pw2")
    assert auth.user_of("Bearer pw2", raters) == "bob" and auth.user_of("Bearer pw1", raters) == "alice"
    assert auth.user_of("Bearer nope", raters) is None and auth.user_of("Bearer pw1", None) is None
    with pytest.raises(ValueError, match="twice"):
        auth.parse_auth("alice:a,alice:b")


def test_a_locked_deployment_asks_for_its_token(built):
    client, _ = _client(built, auth="alice:s3cret")
    with client:
        r = client.get("/api/search", params={"q": "mug"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        token = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/search", params={"q": "mug"}, headers=token).status_code == 200
        assert client.get("/api/info", auth=("alice", "s3cret")).status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no secret and learn nothing
        assert client.get("/gradio_api/info").status_code == 401  # Gradio's own login guards the UI and its API
        assert client.post("/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
        assert client.get("/gradio_api/info").status_code == 200


def test_a_client_over_its_rate_is_told_to_retry(built):
    client, _ = _client(built, rate_limit=1, rate_burst=2)
    with client:
        codes = [client.get("/api/search", params={"q": "red mug", "k": 2}) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 429, 429]
        assert "Too many searches" in codes[2].json()["error"] and int(codes[2].headers["Retry-After"]) >= 1
        ui = client.post(
            "/gradio_api/run/search_text", json={"data": ["red mug", 2, None, None, None, None, None, None]}
        )
        assert "Too many searches" in ui.text  # the UI's events spend the same client's tokens as REST
        other = client.get("/api/search", params={"q": "red mug", "k": 2}, headers={"Authorization": "Bearer x"})
        assert other.status_code == 200  # a token holder is another client
        assert 'mmsearch_rate_limited_total{reason="rate"}' in client.get("/metrics").text


def test_readyz_waits_for_the_listings_to_be_read_ahead(built, monkeypatch):
    release = threading.Event()
    reading = readahead.listing_pages

    def slow(store):
        release.wait(30)
        return reading(store)

    monkeypatch.setattr(readahead, "listing_pages", slow)
    client, _ = _client(built)
    with client:
        waiting = client.get("/readyz?verbose=1")
        assert waiting.status_code == 503 and waiting.json()["checks"]["listings_read_ahead"] is False
        assert client.get("/api/search", params={"q": "red mug"}).status_code == 200  # searches are not held back
        release.set()
        deadline = time.time() + 30
        while client.get("/readyz?verbose=1").status_code != 200 and time.time() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz?verbose=1").json()["checks"] == {
            "index": True,
            "feature_store": True,
            "vector_store": True,  # Faiss here: in the process, always
            "database": True,
            "listings_read_ahead": True,
        }


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["corrupted", "locked", "missing"])
def test_a_broken_feature_store_gives_503_and_readyz_false_without_a_crash(built, tmp_path, fault):
    cfg = settings.replace(built, data_dir=tmp_path / "data", index=tmp_path / "ix")
    build_index(cfg)  # its own data directory: the index's manifest names the one it serves from
    data = cfg.data_dir
    db = data / "feast" / "online_store.db"
    holder = None
    if fault == "missing":
        db.unlink()
    elif fault == "corrupted":
        db.write_bytes(b"this is not a database" * 500)
    else:  # another process holds a write lock (sqlite waits 5 s for it, then gives up)
        holder = sqlite3.connect(db, timeout=0)
        holder.execute("BEGIN EXCLUSIVE")
    client, searcher = _client(cfg)
    with client:
        r = client.get("/api/search", params={"q": "red mug"})
        assert r.status_code == 503 and "Feast online store" in r.json()["error"], r.text
        ready = client.get("/readyz?verbose=1")
        assert ready.status_code == 503 and ready.json()["checks"]["feature_store"] is False
        assert client.get("/healthz").status_code == 200
        assert client.get("/livez").json() == {"status": "ok"}  # liveness: up, whatever its dependencies say
        if holder is None:
            assert client.get("/api/items/demo-00001").status_code == 503
    if holder is not None:
        holder.rollback()
        with client:  # back once the lock goes: the store is checked every second while it is down
            deadline = time.time() + 10
            while client.get("/readyz?verbose=1").status_code != 200 and time.time() < deadline:
                time.sleep(0.2)
            assert client.get("/api/search", params={"q": "red mug"}).status_code == 200


@pytest.mark.slow
def test_a_truncated_index_stops_the_app_with_a_message(built, tmp_path):
    index = tmp_path / "ix"
    shutil.copytree(built.index, index)
    faiss_file = index / "faiss.index"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    run = subprocess.run(
        [
            sys.executable,
            "app.py",
            "--index",
            str(index),
            "--model",
            built.model,
            "--data-dir",
            str(built.data_dir),
            "--catalog",
            built.catalog,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "damaged" in run.stderr and "Traceback" not in run.stderr


def test_searches_from_many_threads_answer_as_one_at_a_time(built, demo_manifest):
    """Encoders, Feast reads, Faiss, BM25 and the query cache shared by threads: every answer equals the serial one."""
    searcher = Searcher.open(built)
    photo = str(demo_manifest.parent / "images" / "demo-00004.jpg")
    calls = [lambda q=q: ask(searcher, q=q, k=5) for q in ("red mug", "blue striped shirt", "green cap", "lamp")]
    calls += [
        lambda: ask(searcher, image=photo, k=4),
        lambda: ask(searcher, item_id="demo-00009", k=4),
        lambda: ask(searcher, q="dotted", k=6, filters="category=mug", mode="vector"),
    ]
    expected = [[(r.item_id, r.score, r.title) for r in call()] for call in calls]
    errors, mismatches = [], []

    def worker(seed: int) -> None:
        order = np.random.default_rng(seed).permutation(len(calls) * 6) % len(calls)
        for i in order:
            try:
                got = [(r.item_id, r.score, r.title) for r in calls[i]()]
                if got != expected[i]:
                    mismatches.append((i, got))
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mismatches, (errors[:3], mismatches[:3])
    assert searcher.queries.cache_info().hits > 0


def test_listings_once_read_come_from_memory_and_new_revisions_from_feast(built):
    searcher = Searcher.open(built)
    first = ask(searcher, q="red mug", k=5)
    hits, misses = searcher.store.listing_hits, searcher.store.listing_misses
    assert misses >= 5
    again = ask(searcher, q="red mug", k=5)
    assert [r.public() for r in again] == [r.public() for r in first]
    assert searcher.store.listing_hits == hits + 5 and searcher.store.listing_misses == misses
    snap = searcher.snapshot
    ids = [r.item_id for r in first]
    stale = [snap.index.revisions[snap.index.row(i)] for i in ids]
    with pytest.raises(StoreUnavailable, match="lacks"):  # another revision is another row: read, not the kept one
        searcher.store.metadata(snap.index.catalog_id, ids, ["other-revision"] * 5)
    assert searcher.store.metadata(snap.index.catalog_id, ids, stale)[0]["title"] == first[0].title


def test_a_flood_of_requests_past_the_queue_is_turned_away_at_once(built):
    """Searches run on the event loop; the requests received meanwhile line up, and past --max-queue get 429."""
    import httpx

    async def flood() -> list[int]:
        searcher = Searcher.open(settings.replace(built, max_queue=4))
        transport = httpx.ASGITransport(app=create_app(searcher))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(
                *(client.get("/api/search", params={"q": f"red mug {i}", "k": 3}) for i in range(30))
            )
        return [r.status_code for r in answers]

    codes = asyncio.run(flood())
    assert codes.count(200) >= 4 and codes.count(429) >= 10 and set(codes) <= {200, 429}, codes


def test_events_and_judgments_spend_the_clients_rate_limit_and_are_bounded(built):
    client, _ = _client(built, rate_limit=0.01, rate_burst=3, judging="open")
    body = client.get("/api/search", params={"q": "red mug", "k": 2}).json()  # token 1
    event = {"query_id": body["query_id"], "item_id": body["results"][0]["item_id"], "position": 1, "action": "click"}
    assert client.post("/api/events", json=event).status_code == 202  # token 2
    grade = {"query": "red mug", "item_id": event["item_id"], "grade": 2, "rater": "ann"}
    assert client.post("/api/judgments", json=grade).status_code == 201  # token 3
    refused = client.post("/api/events", json=event)
    assert refused.status_code == 429 and "Retry-After" in refused.headers and "limit" in refused.json()["error"]
    big = client.post("/api/events", content=b"x" * 20_000, headers={"content-type": "application/json"})
    assert big.status_code == 413 and "KB" in big.json()["error"]


def test_an_open_server_has_no_judging_unless_told(built):
    client, _ = _client(built)
    assert client.get("/api/search", params={"q": "red mug", "k": 2}).json()["query_id"]
    for r in (
        client.post("/api/judgments", json={"query": "red mug", "item_id": "x", "grade": 1, "rater": "a"}),
        client.get("/api/analytics"),
        client.get("/api/judgments/qrels"),
    ):
        assert r.status_code == 403 and "--judging open" in r.json()["error"]


def test_with_users_the_rater_is_the_logged_in_user(built):
    client, _ = _client(built, auth="ann:pw-ann,bob:pw-bob")
    assert client.get("/api/analytics").status_code == 401
    bob = {"Authorization": "Bearer pw-bob"}
    item = client.get("/api/search", params={"q": "red mug", "k": 1}, headers=bob).json()["results"][0]["item_id"]
    grade = {"query": "red mug", "item_id": item, "grade": 2, "rater": "mallory"}
    r = client.post("/api/judgments", json=grade, headers=bob)
    assert r.status_code == 201 and r.json()["rater"] == "bob"  # the user rates, whatever the body says
    rows = client.get("/api/judgments", headers={"Authorization": "Bearer pw-ann"}).text
    assert rows.endswith(f"red mug,{item},2,bob\n")


def test_answers_name_their_build_and_one_process_is_its_own_metrics_target(built):
    import httpx

    from mmsearch.serve import monitoring

    client, searcher = _client(built, auth="ann:secret")
    token = {"Authorization": "Bearer secret"}
    info = client.get("/api/info", headers=token).json()
    assert info["build"] == searcher.snapshot.build and info["build"] and info["replica"] is None
    answer = client.get("/api/search", params={"q": "red mug"}, headers=token)
    assert answer.headers["x-mmsearch-build"] == info["build"]
    similar = client.get(f"/api/items/{answer.json()['results'][0]['item_id']}/similar", headers=token)
    assert similar.headers["x-mmsearch-build"] == info["build"]
    assert client.get("/metrics/targets").status_code == 401
    assert client.get("/metrics/targets", headers=token).json() == [
        {"targets": ["testserver"], "labels": {"replica": "main"}}
    ]
    # a probe learns ready or not; the checks need the token on a locked server (and are in /metrics)
    assert client.get("/readyz").json() == {"ready": True}
    assert client.get("/readyz?verbose=1").json() == {"ready": True}
    detailed = client.get("/readyz?verbose=1", headers=token).json()
    assert detailed["checks"]["database"] is True and detailed["items"] == len(searcher.index)
    assert 'mmsearch_ready_check{check="database"} 1.0' in client.get("/metrics", headers=token).text
    # a replica's own metrics port keeps the same lock
    address = monitoring.serve_metrics("127.0.0.1", client.app.state.deployment.credentials)
    assert httpx.get(f"http://{address}/metrics").status_code == 401
    scraped = httpx.get(f"http://{address}/metrics", headers=token)
    assert scraped.status_code == 200 and "mmsearch_request_seconds" in scraped.text
