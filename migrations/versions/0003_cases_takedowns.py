"""Victim cases, takedown requests, the match log, and the hash-chained audit log.

Existing audit events are chained in id order as they are (the hash function is copied here,
frozen, as version 1 of the chain: migrations must not import code that may change).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64
STATES = ("received", "in_review", "removed", "rejected")


def _state(column: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(column, sa.Enum(*STATES, native_enum=False, length=16), nullable=nullable)


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = " OR ".join(f"{column} = '{v}'" for v in values)
    return sa.CheckConstraint(allowed, name=op.f(f"ck_{table}_{column}"))


def _event_hash(prev_hash: str, row: Any) -> str:
    """Version 1 of the chain; ``ncii.service.history.event_hash`` computes the same."""
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
    payload = json.dumps(
        [
            row.id,
            at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            row.actor,
            row.action,
            row.bank_id,
            row.entry_id,
            row.details,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def _chain_existing_events() -> None:
    events = sa.table(
        "audit_events",
        sa.column("id", ID),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("bank_id", ID),
        sa.column("entry_id", ID),
        sa.column("details", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("row_hash", sa.String()),
    )
    connection = op.get_bind()
    previous, last_id, updates = GENESIS, None, []
    for row in connection.execute(sa.select(events).order_by(events.c.id)):
        row_hash = _event_hash(previous, row)
        updates.append({"key": row.id, "prev": previous, "hash": row_hash})
        previous, last_id = row_hash, row.id
    if updates:
        connection.execute(
            sa.update(events)
            .where(events.c.id == sa.bindparam("key"))
            .values(prev_hash=sa.bindparam("prev"), row_hash=sa.bindparam("hash")),
            updates,
        )
        head = sa.table(
            "audit_chain", sa.column("id"), sa.column("last_id"), sa.column("last_hash")
        )
        connection.execute(sa.insert(head).values(id=1, last_id=last_id, last_hash=previous))


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", ID, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)

    op.create_table(
        "match_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_match_events_at"), "match_events", ["at"], unique=False)
    op.create_index(
        op.f("ix_match_events_entry_id_at"), "match_events", ["entry_id", "at"], unique=False
    )

    op.create_table(
        "cases",
        sa.Column("id", ID, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("bank_id", ID, nullable=True),
        sa.Column(
            "status", sa.Enum("open", "withdrawn", native_enum=False, length=16), nullable=False
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_pins", sa.SmallInteger(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        _one_of("cases", "status", ("open", "withdrawn")),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["banks.id"], name=op.f("fk_cases_bank_id_banks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_cases_bank_id"), "cases", ["bank_id"], unique=False)

    op.create_table(
        "case_entries",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_entries_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["entries.id"],
            name=op.f("fk_case_entries_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "entry_id", name=op.f("pk_case_entries")),
    )
    op.create_index(op.f("ix_case_entries_entry_id"), "case_entries", ["entry_id"], unique=False)

    op.create_table(
        "takedowns",
        sa.Column("id", ID, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        _state("state", nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("case_id", ID, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        _one_of("takedowns", "state", STATES),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_takedowns_case_id_cases"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedowns")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_takedowns_case_id"), "takedowns", ["case_id"], unique=False)
    op.create_index(op.f("ix_takedowns_received_at"), "takedowns", ["received_at"], unique=False)
    op.create_index(
        op.f("ix_takedowns_state_due_at"), "takedowns", ["state", "due_at"], unique=False
    )

    op.create_table(
        "takedown_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("takedown_id", ID, nullable=False),
        sa.Column(
            "kind", sa.Enum("url", "post", "signal", native_enum=False, length=16), nullable=False
        ),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=True),
        sa.Column("quality", sa.SmallInteger(), nullable=True),
        _one_of("takedown_items", "kind", ("url", "post", "signal")),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedowns.id"],
            name=op.f("fk_takedown_items_takedown_id_takedowns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown_items")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_takedown_items_takedown_id"), "takedown_items", ["takedown_id"], unique=False
    )

    op.create_table(
        "takedown_copies",
        sa.Column("id", ID, nullable=False),
        sa.Column("takedown_id", ID, nullable=False),
        sa.Column("source", sa.Enum("bank", "scan", native_enum=False, length=16), nullable=False),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column("bank", sa.String(length=64), nullable=True),
        sa.Column("signal_type", sa.String(length=16), nullable=True),
        sa.Column("distance", sa.SmallInteger(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        _one_of("takedown_copies", "source", ("bank", "scan")),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedowns.id"],
            name=op.f("fk_takedown_copies_takedown_id_takedowns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown_copies")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_takedown_copies_takedown_id"), "takedown_copies", ["takedown_id"], unique=False
    )

    op.create_table(
        "takedown_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("takedown_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _state("from_state", nullable=True),
        _state("to_state", nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _one_of("takedown_events", "from_state", STATES),
        _one_of("takedown_events", "to_state", STATES),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedowns.id"],
            name=op.f("fk_takedown_events_takedown_id_takedowns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_takedown_events_takedown_id"), "takedown_events", ["takedown_id"], unique=False
    )


def downgrade() -> None:
    for table in ("takedown_events", "takedown_copies", "takedown_items"):
        op.drop_index(op.f(f"ix_{table}_takedown_id"), table_name=table)
        op.drop_table(table)
    op.drop_index(op.f("ix_takedowns_state_due_at"), table_name="takedowns")
    op.drop_index(op.f("ix_takedowns_received_at"), table_name="takedowns")
    op.drop_index(op.f("ix_takedowns_case_id"), table_name="takedowns")
    op.drop_table("takedowns")
    op.drop_index(op.f("ix_case_entries_entry_id"), table_name="case_entries")
    op.drop_table("case_entries")
    op.drop_index(op.f("ix_cases_bank_id"), table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_match_events_entry_id_at"), table_name="match_events")
    op.drop_index(op.f("ix_match_events_at"), table_name="match_events")
    op.drop_table("match_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    op.drop_table("audit_chain")
