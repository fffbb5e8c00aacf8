"""What the running service reports about itself: Prometheus metrics and one JSON log line per request.

Stage histograms are filled from inside the searcher (mmsearch/search/stages.py: encode, vector search, keyword,
fusion, Feast read), request histograms by the guard that every REST route, Gradio event and agent tool passes, so
a dashboard can tell a slow encoder from a slow store.
Query text is logged only when asked for (``--log-queries``): queries can say more about a person than they meant to.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from mmsearch.feedback.searchlog import MAX_PENDING
from mmsearch.search.stages import BUCKETS

REQUEST_SECONDS = Histogram("mmsearch_request_seconds", "Whole requests, by endpoint", ["endpoint"], buckets=BUCKETS)
QUERIES = Counter("mmsearch_queries", "Searches answered, by mode and kind of query", ["mode", "kind"])
ERRORS = Counter("mmsearch_errors", "Requests that failed, by the kind of failure", ["type"])
READY_CHECK = Gauge("mmsearch_ready_check", "1 while a readiness check passes, as /readyz last found it", ["check"])
REJECTED = Counter(
    "mmsearch_rate_limited", "Calls turned away: over a client's rate, or the queue was full", ["reason"]
)

request_log = logging.getLogger("mmsearch.requests")


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return json.dumps({"ts": ts, **getattr(record, "fields", {})}, ensure_ascii=False, default=str)


def setup_request_log(stream=None) -> None:
    """Request lines go to stderr as JSON, one per line, whatever the root logger does."""
    if any(isinstance(h.formatter, _JsonLines) for h in request_log.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonLines())
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False


def observe(
    endpoint: str,
    seconds: float,
    *,
    status: int = 200,
    results: int | None = None,
    mode: str = "",
    kind: str = "",
    error: str = "",
    query: str | None = None,
    client: str = "",
) -> None:
    """One finished request: its histogram, its counters and its log line."""
    REQUEST_SECONDS.labels(endpoint).observe(seconds)
    if error:
        ERRORS.labels(error).inc()
    elif kind:
        QUERIES.labels(mode or "vector", kind).inc()
    fields = {"endpoint": endpoint, "status": status, "ms": round(seconds * 1000, 2)}
    fields |= {
        k: v
        for k, v in (("results", results), ("mode", mode), ("kind", kind), ("error", error), ("client", client))
        if v not in (None, "")
    }
    if query is not None:
        fields["query"] = query
    request_log.info("request", extra={"fields": fields})


def index_age_s(manifest: dict) -> float | None:
    """Seconds since the index of this manifest was built, or None when it does not say."""
    built = manifest.get("built_at")
    return None if not built else max(0.0, time.time() - datetime.fromisoformat(built).timestamp())


class ServiceCollector:
    """Read at each scrape: the loaded index (it may have been swapped since) and the query cache's counts."""

    def __init__(self) -> None:
        self.searcher = None
        self.feedback = None

    def collect(self):
        searcher = self.searcher
        if searcher is None:
            return
        index = searcher.index
        items = GaugeMetricFamily("mmsearch_index_items", "Items in the loaded index")
        items.add_metric([], len(index))
        yield items
        age = index_age_s(index.manifest)
        if age is not None:
            gauge = GaugeMetricFamily("mmsearch_index_age_seconds", "Seconds since the loaded index was built")
            gauge.add_metric([], age)
            yield gauge
        info = InfoMetricFamily("mmsearch_model", "The model and index being served")
        info.add_metric(
            [],
            {
                "model_id": searcher.encoder.model_id,
                "index_kind": index.kind,
                "catalog": str(index.manifest.get("catalog_name", "")),
            },
        )
        yield info
        yield from self.dependencies(searcher.store.online.outage, self.feedback)
        cache, store = searcher.queries.cache_info(), searcher.store
        for name, value, text in (
            ("query_cache_hits", cache.hits, "Text queries answered from the embedding cache"),
            ("query_cache_misses", cache.misses, "Text queries that ran the text encoder"),
            ("listing_cache_hits", store.listing_hits, "Listings answered from memory"),
            ("listing_cache_misses", store.listing_misses, "Listings read from the Feast online store"),
        ):
            counter = CounterMetricFamily(f"mmsearch_{name}", text)
            counter.add_metric([], value)
            yield counter

    @staticmethod
    def dependencies(store_outage, feedback):
        """Whether the online store and the database are up, their outages, and the search log's waiting rows."""
        log = feedback.log if feedback is not None else None
        parts = {"feature_store": store_outage} | ({"database": log.outage} if log is not None else {})
        up = GaugeMetricFamily(
            "mmsearch_dependency_up", "1 while a part the server depends on answers", labels=["part"]
        )
        outages = CounterMetricFamily(
            "mmsearch_dependency_outages", "Times a part the server depends on went down", labels=["part"]
        )
        for part, outage in parts.items():
            up.add_metric([part], 1.0 if outage.up else 0.0)
            outages.add_metric([part], outage.outages)
        yield up
        yield outages
        if log is not None:
            waiting = GaugeMetricFamily("mmsearch_searchlog_waiting", "Searches and events not written yet")
            waiting.add_metric([], log.waiting)
            yield waiting
            bound = GaugeMetricFamily(
                "mmsearch_searchlog_waiting_limit", "Rows allowed to wait; past it they are dropped (queue_full)"
            )
            bound.add_metric([], MAX_PENDING)
            yield bound


SERVICE = ServiceCollector()
REGISTRY.register(SERVICE)


def serve_metrics(host: str, credentials) -> str:
    """This process's metrics on a port of its own, behind the same credentials as /metrics: a replica's, which
    Prometheus must scrape one by one (the shared port answers from whichever replica it picks). Returns host:port."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    from mmsearch.serve.auth import NEEDS_TOKEN, authorized

    exposition = make_wsgi_app()

    def metrics(environ, start_response):
        if not authorized(environ.get("HTTP_AUTHORIZATION"), credentials):
            start_response("401 Unauthorized", [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")])
            return [json.dumps({"error": NEEDS_TOKEN}).encode()]
        return exposition(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # a scrape every 15 s is not news
            pass

    server = make_server(host, 0, metrics, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="mmsearch-metrics", daemon=True).start()
    return f"{host}:{server.server_port}"
