"""Reads of the Feast online store as a dependency with a deadline: each read has ``--store-timeout-s`` to answer,
and once one fails the store counts as down, so reads fail at once (a 503 for a search) while a background probe
waits for it to answer again.

Without it a dead Redis held each search 4.6 to 12.5 s (redis-py retries a refused connection three times with
backoff) on the event loop, and ``/healthz`` waited behind it. One line is logged when the store goes down and one when
it is back, not one per read; ``up`` and ``outages`` are what ``/metrics`` exports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import TypeVar

from mmsearch.outage import Outage
from mmsearch.store.errors import StoreUnavailable

log = logging.getLogger("mmsearch.store")
T = TypeVar("T")


class OnlineReads:
    def __init__(self, name: str, timeout_s: float = 1.0, probe_every_s: float = 1.0):
        self.name, self.timeout_s, self.probe_every_s = name, float(timeout_s), float(probe_every_s)
        # Two threads: a read stuck on a dead connection until its socket timeout leaves one for the next.
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="feast-read")
        self.outage = Outage(f"the Feast online store ({name})", log)

    @property
    def up(self) -> bool:
        return self.outage.up

    def read(self, read: Callable[[], T], probe: Callable[[], object] | None = None) -> T:
        """``read()`` within the deadline, or StoreUnavailable at once while the store is down. ``probe`` is the
        cheap read that tells when it is back (``read`` itself by default)."""
        if not self.outage.up:
            raise StoreUnavailable(self._down_message())
        try:
            return self._within_deadline(read)
        except Exception as exc:
            if self.outage.failed(exc, "searches answer 503 until it is back"):
                threading.Thread(
                    target=self._wait_for_it, args=(probe or read,), name="feast-probe", daemon=True
                ).start()
            raise StoreUnavailable(self._down_message()) from exc

    def _within_deadline(self, read: Callable[[], T]) -> T:
        future = self._pool.submit(read)
        try:
            return future.result(timeout=self.timeout_s)
        except FuturesTimeout:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from None

    def _wait_for_it(self, probe: Callable[[], object]) -> None:
        while True:
            time.sleep(self.probe_every_s)
            try:
                self._within_deadline(probe)
            except Exception:  # noqa: BLE001 - still down: said once already
                continue
            self.outage.worked()
            return

    def _down_message(self) -> str:
        return (
            f"The item listings cannot be read from the Feast online store ({self.name}): {self.outage.reason} "
            f"(down for {self.outage.down_for():.0f} s; checked every {self.probe_every_s:g} s). Retry in a moment."
        )
