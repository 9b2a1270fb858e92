"""The store: migrations, events, CSV import/export, concurrent writers — on SQLite and on a
real PostgreSQL server started in a temporary directory."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from tunesmith.cli import main
from tunesmith.errors import BadInputError
from tunesmith.store import db
from tunesmith.store.events import add_pieces, counts, export, import_events, log_event


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of Debian's package, in a temporary directory, for this module."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs Debian's 'postgresql')")
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="tunesmith-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    run_as = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = base / "data"
    try:
        subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tunesmith",
                                 "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                                 f"-k {base} -p {port} -c listen_addresses='' -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, LookupError) as e:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not start here: {e}")
    yield f"postgresql://tunesmith@/postgres?host={base}&port={port}"
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    u = request.getfixturevalue("postgres_url")
    eng = db.engine(u)  # a clean schema for every test
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    db._UPGRADED.discard(db.resolve_url(u))  # the schema is gone: the next session must migrate again
    return u


def _pieces(url, n=3):
    with db.session(url) as s:
        add_pieces(s, [{"key": f"test/p{i}", "kind": "corpus", "title": f"Piece {i}"} for i in range(n)])


def test_migrations_build_exactly_the_models_schema(url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tunesmith.store.models import Base

    assert db.upgrade(url) == db.HEAD
    assert db.upgrade(url) == db.HEAD  # idempotent
    with db.engine(url).connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_sqlite_runs_in_wal_mode(tmp_path):
    u = f"sqlite:///{tmp_path / 'w.db'}"
    db.upgrade(u)
    with db.engine(u).connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_import_round_trips_through_export_and_bad_rows_import_nothing(url, tmp_path):
    _pieces(url)
    good = tmp_path / "events.csv"
    good.write_text("timestamp,listener,piece,event,value,other_piece\n"
                    "2026-01-01T10:00:00Z,ann,test/p0,play,42.5,\n"
                    "2026-01-01T10:01:00Z,ann,test/p0,complete,,\n"
                    "2026-01-01T10:01:00,ann,test/p1,rating,4,\n"
                    "2026-01-02T09:00:00+01:00,bob,test/p2,choice,,test/p1\n"
                    "2026-01-02T09:00:01Z,bob,test/p2,like,,\n")
    rep = import_events(good, url=url)
    assert (rep.events, rep.new_listeners) == (5, 2)
    out = tmp_path / "out"
    export(out, url=url)
    lines = (out / "events.csv").read_text().splitlines()
    assert lines[0] == "timestamp,listener,piece,event,value,other_piece"
    assert "2026-01-02T08:00:00Z,bob,test/p2,choice,,test/p1" in lines  # +01:00 stored as UTC
    assert "2026-01-01T10:00:00Z,ann,test/p0,play,42.5," in lines
    # re-importing the export into a fresh store gives the same events
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,listener,piece,event,value,other_piece\n"
                   "2026-01-03T10:00:00Z,cat,test/p0,like,,\n"
                   "yesterday,cat,test/p0,like,,\n"
                   "2026-01-03T10:00:00Z,cat,test/nope,like,,\n"
                   "2026-01-03T10:00:00Z,cat,test/p0,rating,9,\n"
                   "2026-01-03T10:00:00Z,cat,test/p0,dance,,\n")
    with pytest.raises(BadInputError) as e:
        import_events(bad, url=url)
    msg = str(e.value)
    assert "4 bad row(s), nothing imported" in msg
    for line in ("line 3", "line 4", "line 5", "line 6"):
        assert line in msg
    assert "line 2" not in msg
    assert counts(url) == {"listeners": 2, "pieces": 3, "events": 5}  # nothing half-imported
    with pytest.raises(BadInputError, match="exists"):
        export(out, url=url)  # earlier results are not overwritten silently


def _writer(url: str, who: str, n: int) -> None:
    code = ("import sys; from tunesmith.store import db; from tunesmith.store.events import log_event\n"
            f"for i in range({n}):\n"
            f"    with db.session({url!r}, upgrade_first=False) as s:\n"
            f"        log_event(s, {who!r}, 'test/p0', 'play', value=float(i))\n")
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def test_two_processes_logging_at_once_lose_no_event(url):
    _pieces(url, 1)
    procs = [_writer(url, "w1", 150), _writer(url, "w2", 150)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert counts(url)["events"] == 300


def test_log_event_checks_its_input(url):
    _pieces(url, 2)
    with db.session(url) as s:
        log_event(s, "ann", "test/p0", "rating", value=5)
        for args, kw, msg in ((("ann", "test/p0", "rating"), {"value": 7}, "1–5"),
                              (("ann", "test/zz", "like"), {}, "no such piece"),
                              (("ann", "test/p0", "choice"), {}, "other piece"),
                              (("ann", "test/p0", "hum"), {}, "unknown event")):
            with pytest.raises(BadInputError, match=msg):
                log_event(s, *args, **kw)


def test_db_cli(tmp_path, capsys, monkeypatch):
    u = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TUNESMITH_DB_URL", u)
    assert main(["db", "upgrade"]) == 0
    assert f"schema version {db.HEAD}" in capsys.readouterr().out
    _pieces(u, 2)
    csv = tmp_path / "e.csv"
    csv.write_text("timestamp,listener,piece,event,value,other_piece\n2026-01-01T10:00:00Z,ann,test/p1,like,,\n")
    assert main(["db", "import-events", str(csv)]) == 0
    assert "imported 1 events (1 new listeners)" in capsys.readouterr().out
    assert main(["db", "status"]) == 0
    assert "1 listeners, 2 pieces, 1 events" in capsys.readouterr().out
    (tmp_path / "x.csv").write_text("when,who\n1,2\n")
    assert main(["db", "import-events", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "header lacks" in err and len(err.strip().splitlines()) == 1
    assert main(["db", "status", "--db-url", "mysql://nobody@nowhere/db"]) == 2
    assert "Traceback" not in capsys.readouterr().err
