"""The first schema: listeners, pieces, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listeners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pieces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(400), nullable=False),
        sa.Column("corpus", sa.String(100), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("listeners.id"), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('corpus', 'upload', 'generated')", name="ck_pieces_kind"),
    )
    op.create_index("ix_pieces_content_hash", "pieces", ["content_hash"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("listener_id", sa.Integer(), sa.ForeignKey("listeners.id"), nullable=False),
        sa.Column("piece_id", sa.Integer(), sa.ForeignKey("pieces.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("other_piece_id", sa.Integer(), sa.ForeignKey("pieces.id"), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.CheckConstraint("kind IN ('play', 'complete', 'skip', 'like', 'rating', 'choice')", name="ck_events_kind"),
    )
    op.create_index("ix_events_listener_ts", "events", ["listener_id", "ts"])
    op.create_index("ix_events_piece_id", "events", ["piece_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("pieces")
    op.drop_table("listeners")
