"""Time spent in each stage of a search (encode, vector_search, keyword, fusion, feast_read), as a Prometheus
histogram that ``/metrics`` shows beside the whole requests' times: a dashboard then tells a slow encoder from a slow
store."""

from __future__ import annotations

import time
from contextlib import contextmanager

from prometheus_client import Histogram

# From 0.5 ms (a cached query's index search) to 10 s (an image upload on a loaded CPU).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STAGE_SECONDS = Histogram("mmsearch_stage_seconds", "Time in one stage of a search", ["stage"], buckets=BUCKETS)


@contextmanager
def stage(name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(name).observe(time.perf_counter() - start)
