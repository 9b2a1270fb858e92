"""Opening the store: the URL, the engine (SQLite in WAL mode), migrations, sessions."""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tunesmith.errors import BadInputError, OptionError
from tunesmith.fileio import tunesmith_home

HEAD = "0002"  # the newest migration


def default_url() -> str:
    return f"sqlite:///{tunesmith_home() / 'tunesmith.db'}"


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$TUNESMITH_DB_URL``, else SQLite under ``$TUNESMITH_HOME``. A plain
    ``postgresql://`` URL uses the psycopg 3 driver."""
    url = url or os.environ.get("TUNESMITH_DB_URL") or default_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and the other way round
    cur.execute("PRAGMA busy_timeout=30000")  # a second writer waits for the first instead of failing
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed transaction's integrity
    cur.close()


@cache
def _engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            eng = create_engine(url, connect_args={"timeout": 30})
            event.listen(eng, "connect", _sqlite_pragmas)
        else:
            eng = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as e:
        raise OptionError("--db-url", f"cannot use '{url}': {e}") from None
    return eng


def engine(url: str | None = None) -> Engine:
    return _engine(resolve_url(url))


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_UPGRADED: set[str] = set()  # URLs this process has already brought to HEAD


def upgrade(url: str | None = None) -> str:
    """Create or migrate the schema to the newest version; returns the version."""
    from alembic import command

    url = resolve_url(url)
    eng = _engine(url)
    cfg = _alembic_config(url)
    try:
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as e:
        raise BadInputError(_shown(url), f"cannot open the database: {e.orig}") from None
    _UPGRADED.add(url)
    return current_version(url)


def current_version(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _shown(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def check_schema(url: str | None = None) -> None:
    """Refuse a database whose schema is missing or old, with the command that fixes it."""
    url = resolve_url(url)
    try:
        have = current_version(url)
    except OperationalError as e:
        raise BadInputError(_shown(url), f"cannot open the database: {e.orig}") from None
    if have != HEAD:
        what = "has no tunesmith tables" if have is None and not inspect(engine(url)).has_table("events") else \
            f"is at schema version {have}, this tunesmith needs {HEAD}"
        raise BadInputError(_shown(url), f"{what}; run 'tunesmith db upgrade'")


@contextmanager
def session(url: str | None = None, *, upgrade_first: bool = True):
    """A session on the store (the schema created or migrated first, by default); commits
    at the end, rolls back on any error."""
    if upgrade_first:
        if resolve_url(url) not in _UPGRADED:  # migrate once per process, not on every write
            upgrade(url)
    else:
        check_schema(url)
    maker = sessionmaker(engine(url), expire_on_commit=False)
    with maker() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def shown_url(url: str | None = None) -> str:
    return _shown(resolve_url(url))


def new_session(url: str | None = None) -> Session:
    return sessionmaker(engine(url), expire_on_commit=False)()
