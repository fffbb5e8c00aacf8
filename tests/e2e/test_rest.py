"""The REST API, metrics, health and the file rules, through HTTP against ``python app.py`` as a user runs it."""

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from mmsearch.serve.guard import NOT_UPLOADED

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def app(open_app):
    return open_app


@pytest.fixture(scope="module")
def http(app):
    with httpx.Client(base_url=app.url, timeout=30) as client:
        yield client


def test_text_search_returns_results_with_pictures_a_browser_can_open(http):
    r = http.get("/api/search", params={"q": "red striped t-shirt", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and body["k"] == 5 and body["mode"] == "hybrid" and body["took_ms"] > 0
    assert body["match"] == "good"
    first = body["results"][0]
    assert first["title"] and first["image_url"] == f"/api/items/{first['item_id']}/image"
    assert "image" not in first  # no server paths
    picture = http.get(first["image_url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:2] == b"\xff\xd8"


def test_modes_filters_and_minimum_score(http):
    for mode in ("vector", "keyword", "hybrid"):
        body = http.get("/api/search", params={"q": "blue mug", "k": 4, "mode": mode}).json()
        assert body["mode"] == mode and body["results"]
    body = http.get("/api/search", params={"q": "striped", "k": 6, "filters": "category=mug"}).json()
    assert len(body["results"]) == 6 and {r["category"] for r in body["results"]} == {"mug"}
    everything = http.get("/api/search", params={"q": "red mug", "k": 8, "mode": "vector"}).json()["results"]
    cut = everything[3]["score"]
    kept = http.get("/api/search", params={"q": "red mug", "k": 8, "mode": "vector", "min_score": cut}).json()
    ids = [h["item_id"] for h in kept["results"]]
    assert ids == [h["item_id"] for h in everything][: len(ids)]  # a prefix: same order, the low ones cut
    assert all(h["score"] >= cut for h in kept["results"])  # scores come rounded to 4 places; compare with margin
    assert set(ids) >= {h["item_id"] for h in everything if h["score"] > cut + 1e-4} and len(ids) < 8


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({}, 422, "q: Field required"),
        ({"q": "   "}, 400, "Type something"),
        ({"q": "mug", "k": 0}, 400, "k must be between 1 and 100"),
        ({"q": "mug", "k": "many"}, 422, "k: Input should be a valid integer"),
        ({"q": "mug", "mode": "fuzzy"}, 400, "Unknown search mode"),
        ({"q": "mug", "keyword_weight": "nan"}, 400, "keyword weight must be between 0 and 1"),
        ({"q": "mug", "min_score": "inf"}, 400, "minimum score must be a number"),
        ({"q": "mug", "filters": "colour blue"}, 400, "cannot read the filter"),
        ({"q": "x" * 10_000}, 400, "characters long"),
    ],
)
def test_bad_parameters_get_a_4xx_with_the_uis_message(http, params, status, words):
    r = http.get("/api/search", params=params)
    assert r.status_code == status and words in r.json()["error"], r.text


def test_image_search_by_upload_alone_and_with_words(http, demo_manifest, tmp_path):
    photo = demo_manifest.parent / "images" / "demo-00010.jpg"
    r = http.post("/api/search/image", files={"image": ("x.jpg", photo.read_bytes(), "image/jpeg")}, data={"k": 3})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["item_id"] == "demo-00010" and r.json()["mode"] == "vector"
    assert r.json()["match"] in ("good", "weak")
    r = http.post(
        "/api/search/image",
        files={"image": ("x.jpg", photo.read_bytes(), "image/jpeg")},
        data={"k": 4, "q": "blue mug", "image_weight": 0.5},
    )
    assert r.status_code == 200 and len(r.json()["results"]) == 4 and r.json()["mode"] == "hybrid"
    r = http.post("/api/search/image", files={"image": ("notes.png", b"not an image", "image/png")})
    assert r.status_code == 400 and "cannot be used as an image" in r.json()["error"]
    r = http.post("/api/search/image", data={"k": 3})
    assert r.status_code == 422 and "image" in r.json()["error"]


def test_items_similar_and_info(http):
    item = http.get("/api/items/demo-00007").json()
    assert item["item_id"] == "demo-00007" and item["title"] and item["image_url"].endswith("/demo-00007/image")
    assert "colour" in item["metadata"]
    similar = http.get("/api/items/demo-00007/similar", params={"k": 4}).json()
    assert similar["results"][0]["item_id"] == "demo-00007" and len(similar["results"]) == 4
    for path in ("/api/items/nope", "/api/items/nope/similar", "/api/items/nope/image"):
        r = http.get(path)
        assert r.status_code == 404 and "No item 'nope'" in r.json()["error"]
    info = http.get("/api/info").json()
    assert info["items"] == 96 and info["model"].startswith("two-tower:") and info["index_kind"] == "flat"
    assert info["built_at"] and info["index_age_s"] >= 0 and "faiss-cpu" in info["versions"]


def test_openapi_docs_list_every_route(http):
    page = http.get("/docs")
    assert page.status_code == 200 and "cdn." not in page.text  # Swagger UI's files come from this server
    script = re.search(r'<script src="([^"]+swagger-ui-bundle\.js)"', page.text).group(1)
    assert http.get(script).status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert {
        "/api/search",
        "/api/search/image",
        "/api/items/{item_id}",
        "/api/items/{item_id}/similar",
        "/api/items/{item_id}/image",
        "/api/info",
    } <= set(paths)


def test_metrics_health_and_the_request_log(app, http):
    http.get("/api/search", params={"q": "green striped bag", "k": 3})
    http.get("/api/search", params={"q": "green striped bag", "k": 3})  # the second one from the query cache
    http.get("/api/search", params={"q": "mug", "k": 0})
    text = http.get("/metrics").text
    for stage in ("encode", "vector_search", "keyword", "fusion", "feast_read"):
        assert f'mmsearch_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'mmsearch_request_seconds_count{endpoint="/api/search"}' in text
    assert 'mmsearch_queries_total{kind="text",mode="hybrid"}' in text
    assert 'mmsearch_errors_total{type="QueryError"}' in text
    assert "mmsearch_index_items 96.0" in text and "mmsearch_index_age_seconds" in text
    hits = float(re.search(r"^mmsearch_query_cache_hits_total (\S+)$", text, re.M).group(1))
    assert hits >= 1 and "mmsearch_query_cache_misses_total" in text and "mmsearch_model_info{" in text
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")  # a balancer learns ready or not, nothing more
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert http.get("/readyz?verbose=1").json()["items"] == 96
    time.sleep(0.2)
    lines = [json.loads(line) for line in app.log().splitlines() if line.startswith('{"ts"')]
    searches = [x for x in lines if x["endpoint"] == "/api/search" and x["status"] == 200]
    assert searches and searches[-1]["results"] == 3 and searches[-1]["ms"] > 0
    assert all("query" not in x for x in lines)  # query text only when --log-queries is on
    assert any(x["status"] == 400 for x in lines)


def _gradio_call(http, api_name: str, data: list) -> str:
    """The raw Gradio HTTP API, as the README's curl example calls it: POST the inputs, read the event stream."""
    event = http.post(f"/gradio_api/call/{api_name}", json={"data": data})
    assert event.status_code == 200, event.text
    return http.get(f"/gradio_api/call/{api_name}/{event.json()['event_id']}").text


def test_an_image_input_must_be_an_upload_whatever_the_path(http, app, tiny_two_tower_dir, demo_manifest):
    existing = [
        str(tiny_two_tower_dir / "model.safetensors"),
        "/etc/passwd",
        str(demo_manifest.parent / "images" / "demo-00001.jpg"),
        "../../../../etc/hostname",
    ]
    missing = ["/nonexistent/secret.png", str(tiny_two_tower_dir / "nope.safetensors")]
    answers, started = set(), time.time()
    for path in existing + missing:
        for api_name, data in (
            ("search_image", [{"path": path, "meta": {"_type": "gradio.FileData"}}, 3, 0, ""]),
            ("search_text", ["", 3, 0, "", "hybrid", 0.6, {"path": path}, 0.5]),
        ):
            r = http.post(f"/gradio_api/call/{api_name}", json={"data": data})
            assert r.status_code == 400, (path, r.text)
            answers.add(r.json()["error"])
    assert answers == {NOT_UPLOADED}  # one message, whether the file exists or not: nothing to probe
    from gradio.utils import get_upload_folder

    copied = [
        p
        for p in Path(get_upload_folder()).rglob("*")
        if p.name in ("passwd", "hostname", "demo-00001.jpg") and p.stat().st_mtime >= started - 1
    ]
    assert not copied  # nor copied anywhere the server could hand it out from


def test_only_the_indexed_pictures_are_served(http, app, demo_manifest, tiny_two_tower_dir):
    data_dir = app.log_path.parent
    stream = _gradio_call(http, "search_text", ["blue mug", 2, 0, "", "hybrid", 0.6, None, 0.5])
    gallery = json.loads(stream.split("data:", 1)[1].split("\n")[0])[0]
    served = http.get(gallery[0]["image"]["url"])
    assert served.status_code == 200 and served.content[:2] == b"\xff\xd8"
    for private in (
        data_dir / "feast" / "online_store.db",
        data_dir / "feast" / "registry.db",
        tiny_two_tower_dir / "model.safetensors",
        demo_manifest,
        demo_manifest.parent / "images" / "demo-00001.jpg",
    ):
        assert private.exists()
        assert http.get(f"/gradio_api/file={private}").status_code == 403, private


# --- property tests: whatever a caller sends, a JSON answer with a 2xx/4xx code, never a 500 or a traceback -------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e309",
            "0",
            "5",
            "-1",
            "0.5",
            "true",
            "[]",
            "{}",
            "x" * 10_000,
            "vector",
            "keyword",
            "hybrid",
            "category=mug",
            "price<=20;;",
            "colour=blue|",
        ]
    ),
)
_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _answers_plainly(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    body = r.json()
    assert ("results" in body) if r.status_code == 200 else isinstance(body.get("error"), str) and body["error"]
    assert "Traceback" not in r.text and 'File "' not in r.text


@_PROPERTY
@given(q=_values, k=_values, mode=_values, filters=_values, min_score=_values, keyword_weight=_values)
def test_search_parameters_never_break_the_server(http, q, k, mode, filters, min_score, keyword_weight):
    params = {
        name: value
        for name, value in (
            ("q", q),
            ("k", k),
            ("mode", mode),
            ("filters", filters),
            ("min_score", min_score),
            ("keyword_weight", keyword_weight),
        )
        if value is not None
    }
    _answers_plainly(http.get("/api/search", params=params))


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@_PROPERTY
@given(data=st.lists(_json_values, min_size=8, max_size=8))
def test_wrong_json_types_through_the_gradio_api_get_a_message(http, data):
    """The raw Gradio API with every input of /search_text, of any JSON type: an error event with a message for
    people, or results."""
    r = http.post("/gradio_api/call/search_text", json={"data": data})
    if r.status_code == 400:  # the door refused it (an input naming a file)
        assert r.json()["error"] == NOT_UPLOADED
        return
    stream = http.get(f"/gradio_api/call/search_text/{r.json()['event_id']}").text
    assert "event: complete" in stream or "event: error" in stream, stream
    if "event: error" in stream:
        message = json.loads(stream.split("data:", 1)[1])
        assert message and "Traceback" not in str(message), stream


def test_an_incomplete_raw_call_says_what_is_missing(http):
    r = http.post("/gradio_api/call/search_text", json={"data": ["blue dotted mug", 5]})
    assert r.status_code == 400
    assert r.json()["error"].startswith("/search_text needs 8 inputs in this order: query, k, min_score, filters, mode")
    assert "min_score, filters, mode, keyword_weight, image, image_weight are missing" in r.json()["error"]
    complete = http.post(
        "/gradio_api/call/search_text", json={"data": ["blue dotted mug", 5, None, None, None, None, None, None]}
    )
    stream = http.get(f"/gradio_api/call/search_text/{complete.json()['event_id']}").text
    assert "event: complete" in stream and "5 results for" in stream
