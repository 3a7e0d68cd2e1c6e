"""Initial schema: banks, entries, their signals, audit events and the change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit ids; SQLite's rowid alias must be spelt INTEGER."""


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("bank_id", ID, nullable=True),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(op.f("ix_audit_events_bank_id"), "audit_events", ["bank_id"], unique=False)
    op.create_index(op.f("ix_audit_events_entry_id"), "audit_events", ["entry_id"], unique=False)

    op.create_table(
        "banks",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "source",
            sa.Enum("own", "stopncii", "ncmec", "partner", "case", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("source_ref", sa.String(length=255), nullable=True),
        sa.Column("trust_level", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("trust_level BETWEEN 0 AND 100", name=op.f("ck_banks_trust_level")),
        sa.CheckConstraint(
            "source = 'own' OR source = 'stopncii' OR source = 'ncmec' OR source = 'partner' "
            "OR source = 'case'",
            name=op.f("ck_banks_source"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banks")),
        sa.UniqueConstraint("name", name=op.f("uq_banks_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "changes",
        sa.Column("seq", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bank_id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column(
            "kind",
            sa.Enum("add", "status", "delete_bank", native_enum=False, length=16),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind = 'add' OR kind = 'status' OR kind = 'delete_bank'", name=op.f("ck_changes_kind")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("bank_id", ID, nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "disabled", "withdrawn", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("disabled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("case_ref", sa.Text(), nullable=True),
        sa.Column("added_by", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status = 'active' OR status = 'disabled' OR status = 'withdrawn'",
            name=op.f("ck_entries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name=op.f("fk_entries_bank_id_banks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("id", "bank_id", name=op.f("uq_entries_id_bank_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_entries_bank_id_external_id"), "entries", ["bank_id", "external_id"], unique=False
    )
    op.create_index(
        op.f("ix_entries_bank_id_status"), "entries", ["bank_id", "status"], unique=False
    )

    op.create_table(
        "entry_signals",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("bank_id", ID, nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("quality BETWEEN 0 AND 100", name=op.f("ck_entry_signals_quality")),
        sa.ForeignKeyConstraint(
            ["entry_id", "bank_id"],
            ["entries.id", "entries.bank_id"],
            name=op.f("fk_entry_signals_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_signals")),
        sa.UniqueConstraint(
            "value",
            "signal_type",
            "bank_id",
            name=op.f("uq_entry_signals_value_signal_type_bank_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_entry_signals_entry_id"), "entry_signals", ["entry_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints.
    for table in ("entry_signals", "entries", "changes", "banks", "audit_events"):
        op.drop_table(table)
