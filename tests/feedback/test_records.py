"""Searches, events and judgments in the database: the same tests against SQLite (the default) and a real
PostgreSQL server (Debian's, started by the tests)."""

import time
import uuid

import pytest
from sqlalchemy import text

from mmsearch.feedback.database import DatabaseError, database_url, open_database
from mmsearch.feedback.judgments import JudgmentError, Judgments, checked, lower_median, read_csv, read_qrels
from mmsearch.feedback.searchlog import EventError, Search, SearchLog, UnknownQuery, new_query_id


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = database_url("", tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
    engine = open_database(url)
    if engine.dialect.name == "postgresql":  # one server for the session: each test starts from empty tables
        with engine.begin() as c:
            c.execute(text("TRUNCATE searches, events, judgments"))
    yield engine
    engine.dispose()


def _search(results=("a", "b", "c"), query="red mug", at=None, match="good", teams=None) -> Search:
    return Search(
        new_query_id(), at or time.time(), query, "text", "hybrid", "m", match, tuple(results), 5.0, "x", "rest", teams
    )


def test_events_are_checked_against_the_answer_they_name_and_written_in_batches(engine):
    log = SearchLog(engine, flush_s=60)
    s = _search()
    log.searched(s)
    log.event(s.query_id, "b", 2, "click", None)
    log.event(s.query_id, "a", 1, "add_to_cart", "shop-visitor")
    with pytest.raises(UnknownQuery, match="no search"):
        log.event(uuid.uuid4().hex, "a", 1, "click", None)
    with pytest.raises(EventError, match="outside that answer"):
        log.event(s.query_id, "a", 4, "click", None)
    with pytest.raises(EventError, match="not at position"):
        log.event(s.query_id, "a", 2, "click", None)
    with pytest.raises(EventError, match="action"):
        log.event(s.query_id, "a", 1, "<script>", None)
    with engine.connect() as c:  # each event was written before it was acknowledged, its answer with it
        assert c.execute(text("SELECT count(*) FROM events")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM searches")).scalar() == 1
    log.searched(_search())
    with engine.connect() as c:  # a search alone waits for its batch
        assert c.execute(text("SELECT count(*) FROM searches")).scalar() == 1
    log.close()  # a clean stop writes what waits
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM events")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM searches")).scalar() == 2
    # a second server (a replica, or this one after a restart) checks events against the database
    other = SearchLog(engine, flush_s=60)
    assert other.answer(s.query_id).results == ("a", "b", "c")
    other.event(s.query_id, "c", 3, "view", None)
    other.close()


def test_retention_deletes_old_searches_and_events(engine):
    log = SearchLog(engine, flush_s=60)
    old, new = _search(at=time.time() - 100 * 86400), _search()
    log.searched(old)
    log.searched(new)
    log.flush()
    assert log.prune(90) == 1
    assert log.answer(old.query_id) is None and log.answer(new.query_id) is not None
    log.close()


def test_judgments_keep_one_grade_per_rater_and_pair_and_the_lower_median(engine):
    j = Judgments(engine)
    j.add([checked("Red  Mug", "a", 3, "ann"), checked("red mug", "a", 1, "bob")])
    j.add([checked("red mug", "a", 0, "bob")])  # bob changes his mind
    j.add([checked("blue cap", "z", 2, "ann"), checked("red mug", "b", 2, "ann")])
    assert j.count() == 4
    assert j.qrels() == {"red mug": {"a": 0, "b": 2}, "blue cap": {"z": 2}}  # (0, 3): the lower of the middle two
    assert j.topics() == {"red mug": 1, "blue cap": 2}
    assert j.qrels_text() == "1 0 a 0\n1 0 b 2\n2 0 z 2\n"
    assert j.of_query("RED MUG", "ann") == {"a": 3, "b": 2}
    assert j.queries_judged("ann") == 2 and j.queries_judged("bob") == 1 and j.queries_judged("eve") == 0
    assert lower_median([1, 2, 3]) == 2 and lower_median([0, 3]) == 0 and lower_median([2, 3, 3, 1]) == 2


def test_a_raters_grades_of_one_pair_from_many_threads_keep_one_row(engine):
    from concurrent.futures import ThreadPoolExecutor

    store = Judgments(engine)

    def grade(n: int) -> int:
        return store.add([checked("red mug", "a", n % 4, ("ann", "bob")[n % 2])])

    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(grade, range(80)))
    assert added == [1] * 80
    store.add([checked("red mug", "a", 1, "ann"), checked("red mug", "a", 2, "ann")])  # in one batch the last wins
    assert store.of_query("red mug", "ann") == {"a": 2} and store.count() == 2


def test_judgments_go_out_and_come_back_as_csv_and_qrels(engine):
    j = Judgments(engine)
    j.add([checked("red mug", "a", 3, "ann"), checked("red, mug", "b", 0, "bob")])
    again = read_csv(j.csv_text())
    assert {(x.query, x.item_id, x.grade, x.rater) for x in again} == {
        ("red mug", "a", 3, "ann"),
        ("red, mug", "b", 0, "bob"),
    }
    topics = {str(n): q for q, n in j.topics().items()}
    back = read_qrels(j.qrels_text(), topics, "imported")
    assert {(x.query, x.item_id, x.grade) for x in back} == {("red mug", "a", 3), ("red, mug", "b", 0)}
    with pytest.raises(JudgmentError, match="line 2: grade"):
        read_csv("query,item_id,grade,rater\nred mug,a,5,ann\n")
    with pytest.raises(JudgmentError, match="columns"):
        read_csv("q,item\nx,y\n")
    with pytest.raises(JudgmentError, match="topic 9"):
        read_qrels("9 0 a 1\n", topics, "x")


def test_the_queue_offers_the_most_searched_unjudged_queries_with_why(engine):
    log = SearchLog(engine, flush_s=60)
    for _ in range(3):
        log.searched(_search(query="garden hose", results=(), match="empty"))
    clicked = _search(query="red mug")
    log.searched(clicked)
    log.searched(_search(query="Blue Cap", match="weak"))
    log.event(clicked.query_id, "a", 1, "click", None)
    log.flush()
    j = Judgments(engine)
    assert [(q["query"], q["searches"], q["why"]) for q in j.queue()] == [
        ("garden hose", 3, "no results"),
        ("blue cap", 1, "weak match"),
        ("red mug", 1, ""),
    ]
    j.add([checked("garden hose", "a", 0, "ann")])
    assert [q["query"] for q in j.queue("ann")] == ["blue cap", "red mug"]
    assert [q["query"] for q in j.queue("bob")][0] == "garden hose"
    log.close()


@pytest.mark.parametrize(
    "bad",
    [
        ("", "a", 1, "ann"),
        ("q", "", 1, "ann"),
        ("q", "a", 4, "ann"),
        ("q", "a", True, "ann"),
        ("q", "a", 1, ""),
        ("q", "a", 1, "x" * 65),
    ],
)
def test_a_bad_judgment_is_refused_with_the_field_named(bad):
    with pytest.raises(JudgmentError):
        checked(*bad)


def test_a_database_that_cannot_be_opened_says_which(tmp_path):
    with pytest.raises(DatabaseError, match="cannot open the database"):
        open_database("postgresql://nobody:secret@127.0.0.1:1/none")


def _dropped(table: str, reason: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("mmsearch_searchlog_dropped_total", {"table": table, "reason": reason}) or 0.0


def test_a_row_the_database_refuses_is_dropped_alone_and_the_batch_is_written(engine):
    """SQLite takes any text, so its refused row is a second search under a query_id already written; PostgreSQL
    refuses NUL in text, the row that once stopped the whole log."""
    log = SearchLog(engine, flush_s=60)
    first = _search()
    log.searched(first)
    log.flush()
    before = _dropped("searches", "refused")
    if engine.dialect.name == "postgresql":
        bad = _search(query="red\x00mug")
    else:
        bad = Search(first.query_id, time.time(), "again", "text", "hybrid", "m", "good", ("a",), 5.0, None, "rest")
    good = [_search(query=f"query {i}") for i in range(6)]
    for s in good[:3] + [bad] + good[3:]:
        log.searched(s)
    log.event(good[0].query_id, "a", 1, "click", None)
    log.flush()
    with engine.connect() as c:
        written = {r[0] for r in c.execute(text("SELECT query FROM searches"))}
        assert {s.query for s in good} <= written and c.execute(text("SELECT count(*) FROM events")).scalar() == 1
    assert _dropped("searches", "refused") == before + 1
    log.searched(_search(query="after the bad one"))  # nothing left waiting: the log goes on
    log.close()
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM searches WHERE query = 'after the bad one'")).scalar() == 1


def test_a_replica_finds_an_answer_another_replica_has_not_written_yet(engine):
    """Replicas share the database: an event may arrive at one for an answer still waiting in the other's batch."""
    answering, other = SearchLog(engine, flush_s=0.3), SearchLog(engine, flush_s=0.3, shared=True)
    alone = SearchLog(engine, flush_s=0.3)
    s = _search()
    answering.searched(s)
    other.event(s.query_id, "a", 1, "click", None)  # waited for the other's batch (every 0.3 s here)
    answering.close()
    started = time.monotonic()
    with pytest.raises(UnknownQuery):
        other.event(uuid.uuid4().hex, "a", 1, "click", None)  # never answered: looked for, then refused
    assert 1.2 <= time.monotonic() - started < 3
    started = time.monotonic()
    with pytest.raises(UnknownQuery):
        alone.event(uuid.uuid4().hex, "a", 1, "click", None)  # one process: its memory and the database at once
    assert time.monotonic() - started < 0.5
    other.close()
    alone.close()
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM events")).scalar() == 1
