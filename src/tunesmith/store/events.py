"""Writing and reading the store: pieces, single events, CSV import and export.

The events CSV (what ``db import-events`` reads, ``db export`` and ``recommend simulate``
write) has a header and these columns::

    timestamp,listener,piece,event,value,other_piece

- ``timestamp``: ISO 8601 (``2026-11-26T10:15:00Z``; without a zone it is UTC);
- ``listener``: a name (new names become new listeners);
- ``piece``: the key of a piece in the store (``bach-chorales/bwv269``);
- ``event``: play, complete, skip, like, rating or choice;
- ``value``: seconds listened for play (optional), 1–5 for rating, empty otherwise;
- ``other_piece``: for choice, the piece *not* chosen; empty otherwise.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, select

from tunesmith.errors import BadInputError
from tunesmith.fileio import atomic_write_text
from tunesmith.store import db
from tunesmith.store.models import EVENT_KINDS, PIECE_KINDS, Event, Listener, Piece

COLUMNS = ("timestamp", "listener", "piece", "event", "value", "other_piece")
MAX_SHOWN_ERRORS = 10


def parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _check_value(kind: str, value: float | None) -> str | None:
    """Why a value does not fit an event kind, or None."""
    if value is not None and not math.isfinite(value):
        return "value must be a finite number"
    if kind == "rating":
        if value is None or value != int(value) or not 1 <= value <= 5:
            return "a rating needs a value 1–5"
    elif kind == "play":
        if value is not None and value < 0:
            return "seconds listened cannot be negative"
    elif value is not None:
        return f"'{kind}' takes no value"
    return None


# --------------------------------------------------------------------------- pieces and listeners


def add_pieces(session, rows: list[dict]) -> int:
    """Add pieces (dicts with Piece's columns; ``key`` and ``kind`` required) whose key is
    not in the store yet; returns how many were added."""
    have = set(session.scalars(select(Piece.key)))
    new = []
    for r in rows:
        if r["kind"] not in PIECE_KINDS:
            raise ValueError(f"unknown piece kind {r['kind']!r}")
        if r["key"] not in have:
            have.add(r["key"])
            new.append({"title": "", "created_at": datetime.now(timezone.utc), **r})
    for i in range(0, len(new), 5000):
        session.execute(insert(Piece), new[i:i + 5000])
    return len(new)


def listener_id(session, name: str, *, create: bool = True) -> int | None:
    lid = session.scalar(select(Listener.id).where(Listener.name == name))
    if lid is None and create:
        obj = Listener(name=name)
        session.add(obj)
        session.flush()
        lid = obj.id
    return lid


def piece_id(session, key: str) -> int | None:
    return session.scalar(select(Piece.id).where(Piece.key == key))


def log_event(session, listener: str, piece: str, kind: str, *, value: float | None = None,
              other_piece: str | None = None, ts: datetime | None = None, source: str = "studio") -> int:
    """Record one event (the listener is created on first use); returns its id."""
    if kind not in EVENT_KINDS:
        raise BadInputError(kind, f"unknown event kind; known: {', '.join(EVENT_KINDS)}")
    why = _check_value(kind, value)
    if why:
        raise BadInputError(kind, why)
    pid = piece_id(session, piece)
    if pid is None:
        raise BadInputError(piece, "no such piece in the store")
    other = None
    if kind == "choice":
        if not other_piece:
            raise BadInputError(piece, "a choice needs the other piece")
        other = piece_id(session, other_piece)
        if other is None:
            raise BadInputError(other_piece, "no such piece in the store")
    ev = Event(listener_id=listener_id(session, listener), piece_id=pid, kind=kind, value=value,
               other_piece_id=other, ts=ts or datetime.now(timezone.utc), source=source)
    session.add(ev)
    session.flush()
    return ev.id


# --------------------------------------------------------------------------- CSV import / export


@dataclass
class ImportReport:
    events: int
    new_listeners: int
    source: str


def _parse_rows(path: Path, pieces: dict[str, int]) -> tuple[list[tuple], list[str]]:
    rows, errors = [], []
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise BadInputError(path, f"cannot read: {e.strerror}") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise BadInputError(path, "empty file (no header)")
            header = [h.strip().lower() for h in header]
            missing = [c for c in COLUMNS[:4] if c not in header]
            if missing:
                raise BadInputError(path, f"the header lacks {', '.join(missing)} (columns: {','.join(COLUMNS)})")
            col = {c: header.index(c) for c in COLUMNS if c in header}
            for line_no, rec in enumerate(reader, start=2):
                if not rec or all(not x.strip() for x in rec):
                    continue

                def get(c, rec=rec):
                    i = col.get(c)
                    return rec[i].strip() if i is not None and i < len(rec) else ""

                try:
                    ts = parse_time(get("timestamp"))
                except ValueError:
                    errors.append(f"line {line_no}: timestamp '{get('timestamp')}' is not ISO 8601")
                    continue
                who, key, kind = get("listener"), get("piece"), get("event").lower()
                if not who:
                    errors.append(f"line {line_no}: no listener")
                    continue
                if len(who) > 200:
                    errors.append(f"line {line_no}: listener name longer than 200 characters")
                    continue
                if kind not in EVENT_KINDS:
                    errors.append(f"line {line_no}: unknown event '{kind}' (known: {', '.join(EVENT_KINDS)})")
                    continue
                if key not in pieces:
                    errors.append(f"line {line_no}: unknown piece '{key}'")
                    continue
                raw = get("value")
                try:
                    value = float(raw) if raw else None
                except ValueError:
                    errors.append(f"line {line_no}: value '{raw}' is not a number")
                    continue
                why = _check_value(kind, value)
                if why:
                    errors.append(f"line {line_no}: {why}")
                    continue
                other = None
                if kind == "choice":
                    ok = get("other_piece")
                    if ok not in pieces:
                        errors.append(f"line {line_no}: a choice needs a known other_piece, got '{ok}'")
                        continue
                    other = pieces[ok]
                rows.append((ts, who, pieces[key], kind, value, other))
        except (csv.Error, UnicodeDecodeError) as e:
            raise BadInputError(path, f"not a readable CSV file ({e})") from None
    return rows, errors


def import_events(path: str | Path, *, url: str | None = None, source: str = "import") -> ImportReport:
    """Import an events CSV in one transaction: every row is checked first; any bad row
    and nothing is imported (the error names each bad line)."""
    path = Path(path)
    with db.session(url) as s:
        pieces = dict(s.execute(select(Piece.key, Piece.id)).all())
        rows, errors = _parse_rows(path, pieces)
        if errors:
            shown = "; ".join(errors[:MAX_SHOWN_ERRORS])
            more = f" (and {len(errors) - MAX_SHOWN_ERRORS} more)" if len(errors) > MAX_SHOWN_ERRORS else ""
            raise BadInputError(path, f"{len(errors)} bad row(s), nothing imported: {shown}{more}")
        if not rows:
            raise BadInputError(path, "no events in the file")
        names = {r[1] for r in rows}
        known = dict(s.execute(select(Listener.name, Listener.id).where(Listener.name.in_(names))).all()) \
            if len(names) < 30000 else dict(s.execute(select(Listener.name, Listener.id)).all())
        new = sorted(names - set(known))
        now = datetime.now(timezone.utc)
        for i in range(0, len(new), 5000):
            s.execute(insert(Listener), [{"name": n, "created_at": now} for n in new[i:i + 5000]])
        if new:
            known = dict(s.execute(select(Listener.name, Listener.id)).all())
        batch = []
        for ts, who, pid, kind, value, other in rows:
            batch.append({"listener_id": known[who], "piece_id": pid, "kind": kind, "value": value,
                          "other_piece_id": other, "ts": ts, "source": source})
            if len(batch) == 50000:
                s.execute(insert(Event), batch)
                batch = []
        if batch:
            s.execute(insert(Event), batch)
    return ImportReport(len(rows), len(new), source)


def export(out: str | Path, *, url: str | None = None, force: bool = False) -> list[Path]:
    """Write listeners.csv, pieces.csv and events.csv (the import format) into ``out``."""
    import io
    import json

    out = Path(out)
    names = ("listeners.csv", "pieces.csv", "events.csv")
    taken = [out / n for n in names if (out / n).exists()]
    if taken and not force:
        raise BadInputError(taken[0], "exists; choose another folder or add --force")
    db.check_schema(url)
    with db.new_session(url) as s:
        listeners = s.execute(select(Listener.id, Listener.name, Listener.created_at).order_by(Listener.id)).all()
        pieces = s.execute(select(Piece).order_by(Piece.id)).scalars().all()
        key_of = {p.id: p.key for p in pieces}
        name_of = {i: n for i, n, _ in listeners}

        def table(header, rows) -> str:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
            return buf.getvalue()

        files = [table(("id", "name", "created_at"), [(i, n, c.isoformat()) for i, n, c in listeners]),
                 table(("key", "kind", "title", "corpus", "content_hash", "path", "owner", "model", "settings",
                        "files", "meta"),
                       [(p.key, p.kind, p.title, p.corpus or "", p.content_hash or "", p.path or "",
                         name_of.get(p.owner_id, "") if p.owner_id else "", p.model or "",
                         json.dumps(p.settings) if p.settings is not None else "",
                         json.dumps(p.files) if p.files is not None else "",
                         json.dumps(p.meta) if p.meta is not None else "") for p in pieces])]
        ev = s.execute(select(Event.ts, Event.listener_id, Event.piece_id, Event.kind, Event.value,
                              Event.other_piece_id).order_by(Event.ts, Event.id))
        rows = []
        for ts, lid, pid, kind, value, other in ev:
            ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
            rows.append((ts.isoformat().replace("+00:00", "Z"), name_of[lid], key_of[pid], kind,
                         "" if value is None else f"{value:g}", key_of.get(other, "") if other else ""))
        files.append(table(COLUMNS, rows))
    written = []
    for name, text in zip(names, files):
        written.append(atomic_write_text(out / name, text))
    return written


def counts(url: str | None = None) -> dict[str, int]:
    from sqlalchemy import func

    db.check_schema(url)
    with db.new_session(url) as s:
        return {"listeners": s.scalar(select(func.count(Listener.id))),
                "pieces": s.scalar(select(func.count(Piece.id))),
                "events": s.scalar(select(func.count(Event.id)))}
