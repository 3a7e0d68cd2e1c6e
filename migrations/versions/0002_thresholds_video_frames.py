"""Per-bank match thresholds and video frames; no index on entries' source ids.

Nothing looks entries up by ``external_id``, and the index cost a bulk import seconds per
million rows (its keys arrive in random order).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_index(op.f("ix_entries_bank_id_external_id"), table_name="entries")
    with op.batch_alter_table("banks") as batch:
        batch.add_column(
            sa.Column("match_thresholds", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("banks") as batch:
        batch.alter_column("match_thresholds", server_default=None)

    op.create_table(
        "video_frames",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("bank_id", ID, nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("unbarred", sa.String(length=64), nullable=True),
        sa.CheckConstraint("quality BETWEEN 0 AND 100", name=op.f("ck_video_frames_quality")),
        sa.ForeignKeyConstraint(
            ["entry_id", "bank_id"],
            ["entries.id", "entries.bank_id"],
            name=op.f("fk_video_frames_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_frames")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_video_frames_entry_id"), "video_frames", ["entry_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_video_frames_entry_id"), table_name="video_frames")
    op.drop_table("video_frames")
    with op.batch_alter_table("banks") as batch:
        batch.drop_column("match_thresholds")
    op.create_index(
        op.f("ix_entries_bank_id_external_id"), "entries", ["bank_id", "external_id"], unique=False
    )
