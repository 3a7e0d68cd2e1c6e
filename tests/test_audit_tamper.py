"""`ncii audit verify` against tampering the chain alone cannot show (issue 14, item 10), on both
engines: two rows' ids swapped names the first row whose link breaks, and an emptied (or cut
and re-chained) log beside banks, cases and entries is not "intact"."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.service import history
from ncii.store.engine import Store
from ncii.store.models import AuditChainHead, AuditEvent

runner = CliRunner()
PHOTO = Path(__file__).parent / "data" / "meta" / "q0291.jpg"


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _history(url: str, tmp_path: Path) -> None:
    """Real writes through the CLI: two banks, a per-file add, an import, a case."""
    assert ncii(url, "bank", "create", "b").exit_code == 0
    assert ncii(url, "bank", "create", "other").exit_code == 0
    assert ncii(url, "add", "b", str(PHOTO)).exit_code == 0
    hashes = tmp_path / "h.txt"
    hashes.write_text("".join(f"pdq {n:064x}\n" for n in range(1, 4)))
    assert ncii(url, "import", "other", str(hashes), "-f", "tx").exit_code == 0
    opened = ncii(url, "case", "open", str(Path(__file__).parent / "data/meta/q0746.jpg"))
    assert opened.exit_code == 0, opened.output
    verified = ncii(url, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def _verify_fails(url: str) -> str:
    result = ncii(url, "audit", "verify", "-f", "jsonl")
    assert result.exit_code == exit_codes.TAMPERED, result.output
    assert '"intact":false' in result.stdout
    [line] = result.stderr.splitlines()
    return line


def test_swapped_ids_name_the_first_row_whose_link_breaks(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    _history(store_url, tmp_path)
    with store.begin() as session:
        session.execute(text("UPDATE audit_events SET id = -3 WHERE id = 3"))
        session.execute(text("UPDATE audit_events SET id = 3 WHERE id = 5"))
        session.execute(text("UPDATE audit_events SET id = 5 WHERE id = -3"))
    assert _verify_fails(store_url) == (
        "error: audit event 3 was edited or moved (it does not follow event 2 and its hash "
        "does not match)"
    )


def test_adjacent_swap_names_the_first_of_the_two(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    _history(store_url, tmp_path)
    with store.begin() as session:
        session.execute(text("UPDATE audit_events SET id = -2 WHERE id = 2"))
        session.execute(text("UPDATE audit_events SET id = 2 WHERE id = 3"))
        session.execute(text("UPDATE audit_events SET id = 3 WHERE id = -2"))
    assert _verify_fails(store_url).startswith("error: audit event 2 was edited or moved")


def test_an_emptied_log_beside_data_is_not_intact(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    _history(store_url, tmp_path)
    with store.begin() as session:
        session.execute(text("DELETE FROM audit_events"))
        session.execute(text("DELETE FROM audit_chain"))
    assert _verify_fails(store_url) == (
        "error: the audit log is empty but the store holds 3 banks, 1 case, 5 entries"
    )


def test_an_empty_store_with_an_empty_log_is_intact(store_url: str) -> None:
    result = ncii(store_url, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "audit log intact: 0 events" in result.stderr


def _rechain_without(store: Store, action: str) -> None:
    """Delete the events of one kind and recompute every later hash and the head: what only
    someone with write access and the chain's recipe can do."""
    with store.begin() as session:
        session.execute(text("DELETE FROM audit_events WHERE action = :a"), {"a": action})
        previous, new_id = history.GENESIS, 0
        for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all():
            new_id += 1
            session.execute(
                text("UPDATE audit_events SET id = :new WHERE id = :old"),
                {"new": new_id, "old": row.id},
            )
            row_hash = history.event_hash(
                previous,
                id=new_id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                bank_id=row.bank_id,
                entry_id=row.entry_id,
                details=row.details,
            )
            session.execute(
                text("UPDATE audit_events SET prev_hash = :p, row_hash = :h WHERE id = :i"),
                {"p": previous, "h": row_hash, "i": new_id},
            )
            previous = row_hash
        session.expire_all()
        head = session.get(AuditChainHead, 1)
        assert head is not None
        head.last_id, head.last_hash = new_id, previous


def test_a_rechained_log_missing_an_import_is_caught(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    _history(store_url, tmp_path)
    _rechain_without(store, "bank.import")
    assert _verify_fails(store_url) == (
        "error: bank id 2 holds 3 entries but the audit log records 0 added"
    )


def test_a_rechained_log_missing_a_case_is_caught(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    _history(store_url, tmp_path)
    _rechain_without(store, "case.open")
    error = _verify_fails(store_url)
    assert error.startswith("error: case NC-") and error.endswith("has no case.open audit event")
