"""The stakeholders' loop through the public surface, against ``python app.py`` as a user runs it: query ids on every
answer, events, judgments (qrels, topics, agreement), analytics with the UBI export, interleaving, who may do what,
and what survives ``kill -9``. The same routes run on SQLite (default) and on a real PostgreSQL server."""

import json
import os
import signal
import time

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _app(tmp_path_factory, manifest, model_dir, **env):
    from conftest import tiny_demo_app

    return tiny_demo_app(tmp_path_factory, manifest, model_dir, **env)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory, demo_manifest, tiny_two_tower_dir):
    env = {"MMSEARCH_JUDGING": "open", "MMSEARCH_INTERLEAVE": "keyword", "MMSEARCH_INTERLEAVE_SHARE": "1"}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        env["MMSEARCH_DATABASE_URL"] = url
        from sqlalchemy import create_engine, text

        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as c:  # the session's server may hold another module's rows
            for table in ("searches", "events", "judgments"):
                c.execute(text(f"DROP TABLE IF EXISTS {table}"))
            c.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    running = _app(tmp_path_factory, demo_manifest, tiny_two_tower_dir, **env)
    running.env = env | {  # what a command needs to reach the same catalog, model, index and database
        "MMSEARCH_CATALOG": str(demo_manifest),
        "MMSEARCH_MODEL": f"two-tower:{tiny_two_tower_dir}",
        "MMSEARCH_DUPLICATE_THRESHOLD": "0",
        "MMSEARCH_DATA_DIR": str(running.log_path.parent),
    }
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(app):
    with httpx.Client(base_url=app.url, timeout=30) as client:
        yield client


def test_answers_carry_a_query_id_and_events_on_them_are_accepted_or_refused_plainly(http):
    body = http.get("/api/search", params={"q": "red striped t-shirt", "k": 5}).json()
    qid, first = body["query_id"], body["results"][0]
    assert len(qid) == 32
    ok = {"query_id": qid, "item_id": first["item_id"], "position": 1, "action": "click"}
    assert http.post("/api/events", json=ok).status_code == 202
    assert http.post("/api/events", json=ok | {"action": "add_to_cart", "client_id": "visitor-7"}).status_code == 202
    for bad, status, words in [
        (ok | {"query_id": "0" * 32}, 404, "no search"),
        (ok | {"position": 6}, 409, "outside that answer"),  # a position the schema allows, that answer lacks
        (ok | {"position": 0}, 400, "position must be at least 1"),  # the schema's own bound
        (ok | {"item_id": "nope"}, 409, "not at position"),
        (ok | {"action": "click", "extra": 1}, 422, "extra"),  # the schema says which fields there are
        ({"query_id": qid}, 422, "item_id"),
        (ok | {"action": "<b>x</b>"}, 400, "action"),
    ]:
        r = http.post("/api/events", json=bad)
        assert r.status_code == status and words in r.json()["error"], r.text
    r = http.post("/api/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    image = http.get(first["image_url"]).content
    up = http.post("/api/search/image", files={"image": ("x.jpg", image, "image/jpeg")}, data={"k": "3"}).json()
    assert len(up["query_id"]) == 32 and up["query_id"] != qid


def test_judgments_make_qrels_topics_and_agreement(http):
    items = [r["item_id"] for r in http.get("/api/search", params={"q": "blue mug", "k": 4}).json()["results"]]
    for rater, grades in (("ann", [3, 2, 0, 1]), ("bob", [3, 1, 0, 3])):
        for item, grade in zip(items, grades):
            r = http.post("/api/judgments", json={"query": "Blue Mug", "item_id": item, "grade": grade, "rater": rater})
            assert r.status_code == 201, r.text
    assert (
        http.post("/api/judgments", json={"query": "x", "item_id": items[0], "grade": 7, "rater": "a"}).status_code
        == 400
    )
    missing = http.post("/api/judgments", json={"query": "x", "item_id": "no-such-item", "grade": 1, "rater": "a"})
    assert missing.status_code == 404 and "no-such-item" in missing.json()["error"]
    assert http.post("/api/judgments", json={"query": "x", "item_id": items[0], "grade": 1}).status_code == 400
    topics = http.get("/api/judgments/topics").json()
    topic = next(t["topic"] for t in topics if t["query"] == "blue mug")
    qrels = http.get("/api/judgments/qrels").text.splitlines()
    expected = {f"{topic} 0 {item} {g}" for item, g in zip(items, [3, 1, 0, 1])}  # lower median of the two raters
    assert expected <= set(qrels)
    agreement = http.get("/api/judgments/agreement").json()
    pair = agreement["pairwise"][0]
    assert pair["raters"] == ["ann", "bob"] and pair["pairs_both_graded"] == 4 and pair["agreed"] == 2
    assert -1 <= pair["cohen_kappa"] <= 1 and agreement["krippendorff_alpha_ordinal"] is not None
    assert {d["item_id"] for d in agreement["disagreements"]} == {items[1], items[3]}
    assert agreement["disagreements"][0]["spread"] == 2  # the widest first
    assert http.get("/api/judgments").text.startswith("query,item_id,grade,rater")


def test_one_raters_grades_of_a_pair_sent_at_once_are_all_kept_as_one_row(app):
    """200 grades of one (query, item) from ann, ann, bob and bob in four threads: each acknowledged (a delete then
    insert raced on PostgreSQL's unique constraint), one row per rater, then a later grade replaces it."""
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(base_url=app.url, timeout=30) as client:
        item = client.get("/api/search", params={"q": "green mug", "k": 1}).json()["results"][0]["item_id"]

    def grade(rater: str) -> list[int]:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            body = {"query": "Green  Mug", "item_id": item, "rater": rater}
            return [client.post("/api/judgments", json=body | {"grade": n % 4}).status_code for n in range(50)]

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for batch in pool.map(grade, ["ann", "ann", "bob", "bob"]) for s in batch]
    assert statuses == [201] * 200
    with httpx.Client(base_url=app.url, timeout=30) as client:
        for rater, last in (("ann", 3), ("bob", 0)):
            body = {"query": "green mug", "item_id": item, "grade": last, "rater": rater}
            assert client.post("/api/judgments", json=body).status_code == 201
        rows = [r for r in client.get("/api/judgments").text.splitlines() if r.startswith(f"green mug,{item},")]
    assert sorted(rows) == [f"green mug,{item},0,bob", f"green mug,{item},3,ann"]


def test_analytics_count_what_people_searched_and_clicked_and_export_ubi(http):
    tag = f"zebra{int(time.time() * 1000) % 100000}"
    for _ in range(3):
        http.get("/api/search", params={"q": f"{tag} lamp", "k": 3})
    clicked = http.get("/api/search", params={"q": "white lamp", "k": 3}).json()
    http.post(
        "/api/events",
        json={
            "query_id": clicked["query_id"],
            "item_id": clicked["results"][1]["item_id"],
            "position": 2,
            "action": "click",
        },
    )
    found = http.get("/api/analytics", params={"days": 1}).json()
    assert found["searches"] >= 5 and found["clicks"] >= 2 and 0 < found["click_through_rate"] <= 1
    assert {"query": f"{tag} lamp", "searches": 3, "clicked": 0} in found["top_queries"]
    assert any(q["query"] == f"{tag} lamp" for q in found["no_click_queries"])
    assert found["latency_ms"]["p50"] > 0 and found["searches_per_day"][-1]["searches"] >= 5
    assert http.get("/api/analytics", params={"days": 0}).status_code == 400
    lines = [json.loads(x) for x in http.get("/api/analytics/ubi", params={"days": 1}).text.splitlines()]
    queries = [x for x in lines if x["table"] == "ubi_queries"]
    events = [x for x in lines if x["table"] == "ubi_events"]
    assert any(q["user_query"] == f"{tag} lamp" for q in queries)
    click = next(e for e in events if e["query_id"] == clicked["query_id"])
    assert click["action_name"] == "click" and click["event_attributes"]["position"]["ordinal"] == 2
    assert all(len(q["client_id"]) == 24 and "127.0.0.1" not in json.dumps(q) for q in queries)  # salted hashes
    metrics = http.get("/metrics").text
    assert 'mmsearch_events_total{action="click"}' in metrics and "mmsearch_answers_total" in metrics


def test_interleaved_answers_credit_the_team_whose_result_was_clicked(http):
    # --interleave keyword --interleave-share 1: every text search in the served mode is a team draft
    for _ in range(6):
        body = http.get("/api/search", params={"q": "green striped bag", "k": 6}).json()
        http.post(
            "/api/events",
            json={
                "query_id": body["query_id"],
                "item_id": body["results"][0]["item_id"],
                "position": 1,
                "action": "click",
            },
        )
    mixed = http.get("/api/analytics", params={"days": 1}).json()["interleaving"]
    row = next(r for r in mixed["per_query"] if r["query"] == "green striped bag")
    assert row["wins_a"] + row["wins_b"] + row["ties"] == 6 and row["ties"] == 0
    assert mixed["searches"] >= 6 and 0 < mixed["p_value"] <= 1
    explicit = http.get("/api/search", params={"q": "green striped bag", "k": 6, "mode": "vector"}).json()
    assert explicit["mode"] == "vector"  # a mode asked for is never interleaved


def test_an_acknowledged_judgment_and_event_survive_kill_9_and_a_clean_stop_keeps_the_searches(
    tmp_path_factory, demo_manifest, tiny_two_tower_dir
):
    from conftest import RunningApp

    data = tmp_path_factory.mktemp("durable")
    env = {
        "MMSEARCH_CATALOG": str(demo_manifest),
        "MMSEARCH_MODEL": f"two-tower:{tiny_two_tower_dir}",
        "MMSEARCH_DUPLICATE_THRESHOLD": "0",
        "MMSEARCH_JUDGING": "open",
        "MMSEARCH_EVENTS_FLUSH_S": "3600",  # nothing flushed on a timer: only an event or the clean stop writes
    }
    first = RunningApp(data, env)
    with httpx.Client(base_url=first.url, timeout=30) as http:
        body = http.get("/api/search", params={"q": "red mug", "k": 2}).json()
        item = body["results"][0]["item_id"]
        ev = {"query_id": body["query_id"], "item_id": item, "position": 1, "action": "click"}
        assert http.post("/api/events", json=ev).status_code == 202
        r = http.post("/api/judgments", json={"query": "red mug", "item_id": item, "grade": 3, "rater": "ann"})
        assert r.status_code == 201
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    first._log.close()
    second = RunningApp(data, env)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            assert f"1 0 {item} 3" in http.get("/api/judgments/qrels").text
            body = http.get("/api/search", params={"q": "blue cap", "k": 2}).json()
            ev = {"query_id": body["query_id"], "item_id": body["results"][0]["item_id"], "position": 1}
            assert http.post("/api/events", json=ev | {"action": "add_to_cart"}).status_code == 202
            http.get("/api/search", params={"q": "green hat", "k": 2})  # no event: waits for its batch
    finally:
        second.stop()  # SIGTERM: a clean stop writes the waiting searches
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data / 'mmsearch.sqlite3'}")
    with engine.connect() as c:
        actions = [a for (a,) in c.execute(text("SELECT action FROM events ORDER BY id"))]
        queries = {q for (q,) in c.execute(text("SELECT query FROM searches"))}
    engine.dispose()
    assert actions == ["click", "add_to_cart"]  # the first server's click was on disk before its 202
    assert {"red mug", "blue cap", "green hat"} <= queries


def test_the_gradio_api_carries_query_ids_and_takes_judgments(app, http):
    from gradio_client import Client

    client = Client(app.url, verbose=False, download_files=False)
    _, results, _ = client.predict("red striped t-shirt", 4, api_name="/search_text")
    assert len({r["query_id"] for r in results}) == 1 and [r["position"] for r in results] == [1, 2, 3, 4]
    event = {"query_id": results[2]["query_id"], "item_id": results[2]["item_id"], "position": 3, "action": "view"}
    assert http.post("/api/events", json=event).status_code == 202  # a UI answer's id works for REST events
    kept = client.predict("Red striped T-shirt", results[0]["item_id"], 2, "carol", api_name="/judge")
    assert kept == {"query": "red striped t-shirt", "item_id": results[0]["item_id"], "grade": 2, "rater": "carol"}
    with pytest.raises(Exception, match="grade must be 0, 1, 2 or 3"):
        client.predict("red striped t-shirt", results[0]["item_id"], 5, "carol", api_name="/judge")
    tool = json.loads(client.predict("blue mug", 3, "hybrid", "", api_name="/search_products"))
    assert len(tool["query_id"]) == 32 and len(tool["results"]) == 3
    table, summary = client.predict("all", api_name="/evaluate_judgments")  # the Evaluation tab's judged section
    assert [row[0] for row in table["data"]] == ["vector", "keyword", "hybrid"] and "judged queries" in summary


def test_evaluation_on_judgments_reports_every_mode_with_its_coverage(app, http):
    import subprocess
    import sys

    body = http.get("/api/search", params={"q": "yellow checked cap", "k": 3}).json()
    for grade, hit in zip((3, 0, 2), body["results"]):
        judgment = {"query": "yellow checked cap", "item_id": hit["item_id"], "grade": grade, "rater": "dan"}
        assert http.post("/api/judgments", json=judgment).status_code == 201
    out = subprocess.run(
        [sys.executable, "-m", "mmsearch.evaluate", "--judgments", "--tracker", "none"],
        capture_output=True,
        text=True,
        env=os.environ | app.env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "judged queries" in lines[0]
    for mode in ("vector", "keyword", "hybrid"):
        row = next(line for line in lines if line.startswith(mode))
        assert row.strip().endswith("%")  # the share of its top 10 that is judged


def test_control_characters_never_reach_the_database_on_any_way_in(app, http):
    """'GET /api/search?q=%00%00' once answered 200 and then stopped the search log on PostgreSQL for good; text made
    only of control characters is refused, and the others are dropped before search and storage."""
    for bad in ("\x00\x00", "\x00 \x07"):
        r = http.get("/api/search", params={"q": bad})
        assert r.status_code == 400 and "Type something" in r.json()["error"], r.text
    tag = f"nul{int(time.time() * 1000) % 100000}"
    r = http.get("/api/search", params={"q": f"{tag}\x00 lamp\x1b", "k": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    item = r.json()["results"][0]["item_id"]
    judged = http.post(
        "/api/judgments", json={"query": f"{tag}\x00 lamp", "item_id": item, "grade": 2, "rater": "a\x00nn"}
    )
    assert judged.status_code == 201 and judged.json()["query"] == f"{tag} lamp" and judged.json()["rater"] == "ann"
    blank = http.post("/api/judgments", json={"query": "\x00", "item_id": item, "grade": 2, "rater": "ann"})
    assert blank.status_code == 400
    for _ in range(3):
        http.get("/api/search", params={"q": f"{tag} after", "k": 1})
    lines = [json.loads(x) for x in http.get("/api/analytics/ubi", params={"days": 1}).text.splitlines()]
    asked = [x["user_query"] for x in lines if x["table"] == "ubi_queries" and tag in (x["user_query"] or "")]
    assert sorted(asked) == [f"{tag} after"] * 3 + [f"{tag} lamp"], asked  # written, and the log still writes after
    assert not any("\x00" in (x.get("user_query") or "") for x in lines) and "dropped" not in app.log()
