"""What the feedback loop counts, for /metrics: answers by match, events by action, grades kept, and the rows the
search log could not keep (a database that refused a row, or a queue that was full)."""

from __future__ import annotations

from prometheus_client import Counter

ANSWERS = Counter(
    "mmsearch_answers", "Searches answered, by match: good, weak (nothing matches well) or empty", ["match"]
)
EVENTS = Counter("mmsearch_events", "Events on results accepted, by action (click, view, a shop's own)", ["action"])
JUDGMENTS = Counter("mmsearch_judgments", "Grades kept from raters")
LOG_DROPPED = Counter(
    "mmsearch_searchlog_dropped",
    "Searches and events the log did not keep, by table and reason: refused (the database would not take the row) "
    "or queue_full (more were waiting than the log holds)",
    ["table", "reason"],
)
MAX_ACTION_LABELS = 32  # a shop may send any action name: past this many, the rest count as "other"
_actions: set[str] = set()


def count_event(action: str) -> None:
    if action not in _actions and len(_actions) < MAX_ACTION_LABELS:
        _actions.add(action)
    EVENTS.labels(action if action in _actions else "other").inc()
