"""The store's tables (SQLAlchemy 2 declarative models).

- ``listeners``: a name (unique) per listener.
- ``pieces``: anything that can be listened to — a bundled corpus piece, a user's upload
  or a generated piece (with the model and settings that made it and the files it was
  written to). ``key`` is the readable, unique name events refer to.
- ``events``: what a listener did with a piece, when: ``play`` (value: seconds
  listened), ``complete``, ``skip``, ``like``, ``rating`` (value 1–5) and ``choice``
  (an A/B test: the listener chose ``piece`` over ``other_piece``). ``source`` says
  where the event came from (``studio``, ``import``, ``simulated:seed=…``), so reports
  can say when their events are simulated.

The schema is created and changed only by the migrations in ``migrations/versions``;
a test checks that they produce exactly these tables.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EVENT_KINDS = ("play", "complete", "skip", "like", "rating", "choice")
PIECE_KINDS = ("corpus", "upload", "generated")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Listener(Base):
    __tablename__ = "listeners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Piece(Base):
    __tablename__ = "pieces"
    __table_args__ = (CheckConstraint("kind IN ('corpus', 'upload', 'generated')", name="ck_pieces_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(400), default="")
    corpus: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # the source file, for corpus pieces and uploads
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("listeners.id"), nullable=True)  # uploads, generated
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # generated: the model that made it
    settings: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # generated: the settings used
    files: Mapped[list | None] = mapped_column(JSON, nullable=True)  # generated / uploads: files written
    meta: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # key, meter, tempo, voices, region …
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # others may see it


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("kind IN ('play', 'complete', 'skip', 'like', 'rating', 'choice')", name="ck_events_kind"),
        Index("ix_events_listener_ts", "listener_id", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"))
    piece_id: Mapped[int] = mapped_column(ForeignKey("pieces.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    other_piece_id: Mapped[int | None] = mapped_column(ForeignKey("pieces.id"), nullable=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(100), default="studio")


JOB_STATUSES = ("queued", "running", "cancelling", "done", "failed", "cancelled")


class Account(Base):
    """A studio login for a listener: an argon2 hash of the password."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginSession(Base):
    """A logged-in browser: the SHA-256 of its cookie's random token (the token itself is
    never stored) and the session's CSRF token."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """Work the studio's worker processes do (generate, harmonize, import …): the queue is
    this table, so a restart loses nothing."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'cancelling', 'done', 'failed', 'cancelled')",
                        name="ck_jobs_status"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_listener", "listener_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ListeningTest(Base):
    """A blind test: ``kind`` 'mos' (rate each piece 1–5) or 'ab' (choose the better of two);
    ``systems`` maps each system's name to its piece ids."""

    __tablename__ = "listening_tests"
    __table_args__ = (CheckConstraint("kind IN ('mos', 'ab')", name="ck_listening_tests_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    systems: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ListeningAnswer(Base):
    """One listener's answer to one trial: a rating '1'…'5', or 'a' / 'b' / 'tie'."""

    __tablename__ = "listening_answers"
    __table_args__ = (UniqueConstraint("test_id", "listener_id", "trial", name="uq_listening_answer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    test_id: Mapped[int] = mapped_column(ForeignKey("listening_tests.id"))
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id"))
    trial: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
