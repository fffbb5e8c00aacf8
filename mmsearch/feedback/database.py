"""The database of searches, events and judgments: SQLite in WAL mode under the data directory by default,
PostgreSQL with ``--database-url`` for several replicas sharing one.

Opening it runs the migrations (Alembic, ``migrations/``) up to the newest revision, so a server started on an older
data directory upgrades it first. SQLite runs with ``synchronous=FULL``: a write is on disk when its transaction
commits, so what the server acknowledged survives ``kill -9`` (and a power cut).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_FILE = "mmsearch.sqlite3"
DIALECTS = ("sqlite", "postgresql")  # both have the upserts and the ON CONFLICT judgments rely on


class DatabaseError(RuntimeError):
    """The database cannot be opened or written; the message says which and why."""


def out_of_reach(exc: BaseException) -> bool:
    """Whether a failure says the database is down or unreachable (or, for SQLite, locked past its busy timeout),
    rather than that a statement or a row is wrong: waiting may mend the first, never the second."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def reachable(engine: Engine) -> bool:
    """One trivial query (for /readyz)."""
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def database_url(url: str, data_dir: Path) -> str:
    """``url`` as given, else the SQLite file under ``data_dir``."""
    if url:
        return url
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(data_dir).resolve() / DEFAULT_FILE}"


def _driver(url: str) -> str:
    """postgresql://... means psycopg 3 (the driver mmsearch installs), not SQLAlchemy's default psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the Analytics tab) do not block the writer
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_database(url: str) -> Engine:
    """An engine on ``url`` with its schema at the newest revision."""
    try:
        # A server that does not answer is given 3 s to connect (psycopg waits for ever by default).
        connect = {"connect_timeout": 3} if url.startswith(("postgresql", "postgres:")) else {}
        engine = create_engine(_driver(url), pool_pre_ping=True, connect_args=connect)
        if engine.dialect.name not in DIALECTS:
            raise DatabaseError(
                "the database must be SQLite or PostgreSQL (sqlite:///file, postgresql://...), "
                f"not {engine.dialect.name}"
            )
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        migrate(engine)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        shown = engine.url.render_as_string(hide_password=True) if "engine" in locals() else "the database URL"
        raise DatabaseError(f"cannot open the database {shown}: {exc}") from exc
    return engine


MIGRATION_LOCK = 0x6D6D73  # replicas starting together on one PostgreSQL database take turns upgrading it


def open_configured(settings) -> Engine:
    """The database a command's settings name (``database_url``, else SQLite under ``data_dir``): the server's,
    the judgments command's, evaluation's and tuning's one way to find it."""
    return open_database(database_url(settings.database_url, settings.data_dir))


def migrate(engine: Engine, revision: str = "head") -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
