"""PDQ variants: extra hashes of a reported picture (crops, small rotations, its own region).

A bank entry added from media holds, besides the picture's own PDQ, the PDQ hashes of systematic
variants of it (``ncii.detection``), so that a trimmed or straightened re-upload still matches.
They are ``entry_signals`` rows like any other, so the index, the change log and withdrawals
treat them alike; ``variant`` names the variant (NULL for the picture's own hashes) and keeps
them out of identity lookups and exports.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entry_signals") as batch:
        batch.add_column(sa.Column("variant", sa.String(32), nullable=True))


def downgrade() -> None:
    # Variant rows mean nothing to a schema without the column: drop them with it.
    op.execute("DELETE FROM entry_signals WHERE variant IS NOT NULL")
    with op.batch_alter_table("entry_signals") as batch:
        batch.drop_column("variant")
