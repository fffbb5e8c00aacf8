"""Whether a part the service depends on (the Feast online store, the database) is down: said once when it goes down
and once when it is back, with how long it was out, instead of a line (and a traceback) per retry. ``up`` and
``outages`` are what ``/metrics`` exports."""

from __future__ import annotations

import logging
import threading
import time


class Outage:
    def __init__(self, part: str, log: logging.Logger):
        self.part, self.log = part, log
        self.down_since: float | None = None
        self.reason = ""
        self.outages = 0
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self.down_since is None

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else time.time() - self.down_since

    def failed(self, exc: BaseException, consequence: str) -> bool:
        """Counts ``exc`` as the part being down; True (and one log line) only when it was up until now."""
        with self._lock:
            if self.down_since is not None:
                return False
            self.down_since, self.reason = time.time(), f"{type(exc).__name__}: {exc}"[:300]
            self.outages += 1
        self.log.error("%s is down: %s; %s", self.part, self.reason, consequence)
        return True

    def worked(self, after: str = "") -> None:
        """The part answered; one log line if it had been down."""
        with self._lock:
            if self.down_since is None:
                return
            took, self.down_since = time.time() - self.down_since, None
        self.log.warning("%s answers again, after %.1f s down%s", self.part, took, f"; {after}" if after else "")
