"""The tables of what people do with answers: the searches the server answered, the events on their results (clicks,
views, a shop's own actions) and the grades raters gave. SQLAlchemy Core tables; migrations/ creates and changes them
(Alembic), so an old data directory is brought up to date at start.

Times are seconds since the epoch (a float): the same in SQLite and PostgreSQL, and cheap to compare for retention.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

MAX_ACTION = 64  # an action name such as add_to_cart
MAX_ID = 200  # item ids, query ids, client ids
MAX_RATER = 64

searches = Table(
    "searches",
    metadata,
    Column("query_id", String(32), primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("query", Text),  # None for an upload alone or similar items
    Column("kind", String(16), nullable=False),  # text, image, text+image, similar
    Column("mode", String(16), nullable=False),
    Column("model", String(MAX_ID), nullable=False),
    Column("match", String(8), nullable=False),
    Column("results", Text, nullable=False),  # JSON list of item ids, in the order shown
    Column("teams", Text),  # interleaved answers: JSON list of "A"/"B", one per result
    Column("took_ms", Float, nullable=False),
    Column("client_id", String(MAX_ID)),  # a salted hash, never an address
    Column("source", String(16), nullable=False),  # rest, ui, tool
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("query_id", String(32), nullable=False, index=True),
    Column("item_id", String(MAX_ID), nullable=False),
    Column("position", Integer, nullable=False),  # 1 = the first result
    Column("action", String(MAX_ACTION), nullable=False),
    Column("client_id", String(MAX_ID)),
    Column("at", Float, nullable=False, index=True),
)

judgments = Table(
    "judgments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("query", Text, nullable=False),  # normalised: lower case, single spaces
    Column("item_id", String(MAX_ID), nullable=False),
    Column("grade", Integer, nullable=False),  # 0 irrelevant, 1 related, 2 relevant, 3 perfect
    Column("rater", String(MAX_RATER), nullable=False),
    Column("at", Float, nullable=False),
    UniqueConstraint("query", "item_id", "rater", name="one_grade_per_rater"),
)
Index("judgments_by_query", judgments.c.query)
