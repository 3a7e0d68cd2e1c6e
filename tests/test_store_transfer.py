"""Import and export: the file formats (pure parsing), and imports/exports on both engines —
idempotent, all-or-nothing, withdrawals from StopNCII records applied."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from sqlalchemy import func, select

from ncii.errors import ImportFailed
from ncii.service import banks, entries, formats, history, ingest, transfer
from ncii.service.entries import Invalid, NewEntry
from ncii.service.formats import Provenance
from ncii.signals import Signal
from ncii.store.engine import Store
from ncii.store.models import AuditEvent, Change, EntryStatus

PDQ = [f"{i:064x}" for i in range(1, 20)]
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _read(text: str, fmt: str, **defaults: str) -> list[NewEntry | Invalid]:
    return list(formats.read_records(io.StringIO(text), fmt, defaults=Provenance(**defaults)))


def _stopncii(value: str, status: str = "Active", cases: object = None, **extra: object) -> dict:
    return {
        "lastModtimestamp": 1625175071,
        "signalType": "ImagePDQ",
        "hashValue": value,
        "hashStatus": status,
        "caseNumbers": {"c-1": status} if cases is None else cases,
        **extra,
    }


# --- formats, without a database ------------------------------------------------------------


def test_csv_columns_status_quality_and_defaults() -> None:
    text = (
        "value,signal_type,quality,status,external_id,case_ref,note,extra\n"
        f"{PDQ[0].upper()},PDQ,87,,ext-1,,,ignored\n"
        f"{MD5},md5,,withdrawn,,C-9,a note,\n"
        "\n"
    )
    first, second = _read(text, "csv", case_ref="DEFAULT", note="n")
    assert isinstance(first, NewEntry) and isinstance(second, NewEntry)
    assert first.signals == (Signal("pdq", PDQ[0], 87),)
    assert (first.status, first.external_id, first.case_ref, first.note) == (
        EntryStatus.active,
        "ext-1",
        "DEFAULT",
        "n",
    )
    assert (second.status, second.case_ref, second.note) == (EntryStatus.withdrawn, "C-9", "a note")
    assert (first.line, second.line) == (2, 3)


def test_csv_rows_sharing_an_entry_key_are_one_entry() -> None:
    text = (
        "entry,signal_type,value,quality\n"
        f"7,pdq,{PDQ[0]},90\n7,md5,{MD5},\n8,pdq,{PDQ[1]},\n,pdq,{PDQ[2]},\n,pdq,{PDQ[3]},\n"
    )
    records = _read(text, "csv")
    assert [len(r.signals) for r in records if isinstance(r, NewEntry)] == [2, 1, 1, 1]


def test_csv_bad_rows_are_reported_with_their_line() -> None:
    text = f"signal_type,value,quality,status\npdq,{PDQ[0]}\npdq,zz\npdq,{PDQ[1]},101\nx,{MD5}\n"
    text += f"pdq,{PDQ[2]},,lost\n"
    records = _read(text, "csv")
    assert isinstance(records[0], NewEntry)
    assert [(r.line, type(r).__name__) for r in records[1:]] == [(3, "Invalid")] * 1 + [
        (4, "Invalid"),
        (5, "Invalid"),
        (6, "Invalid"),
    ]
    assert "64 hex digits" in records[1].reason


def test_csv_without_the_columns_fails_as_a_whole() -> None:
    with pytest.raises(ImportFailed, match="line 1: no signal_type and value columns"):
        _read("hash,kind\nabc,pdq\n", "csv")
    assert _read("", "csv") == []


def test_csv_from_ncii_hash_is_accepted() -> None:
    text = (
        "path,media_type,size,width,height,pdq,pdq_quality,phash,dhash,ahash,whash,md5,sha256,"
        "error\n"
        f"a.jpg,image/jpeg,1,1,1,{PDQ[0]},92,d1c1b2a3c4e5f607,,,,{MD5},{SHA},\n"
        "b.jpg,,,,,,,,,,,,,b.jpg: not an image\n"
    )
    good, bad = _read(text, "csv")
    assert isinstance(good, NewEntry) and isinstance(bad, Invalid)
    assert [s.type for s in good.signals] == ["pdq", "phash", "md5", "sha256"]
    assert good.signals[0].quality == 92
    assert "not hashed" in bad.reason


def test_jsonl_both_shapes_and_ncii_hash_records() -> None:
    lines = [
        {"signal_type": "pdq", "value": PDQ[0], "quality": 50, "status": "disabled"},
        {
            "path": "secret-name.jpg",
            "signals": [
                {"type": "pdq", "value": PDQ[1], "quality": 90},
                {"type": "md5", "value": MD5},
            ],
            "error": None,
        },
        {"path": "broken.jpg", "error": "broken.jpg: not an image"},
        {
            "status": "withdrawn",
            "signals": [{"type": "sha256", "value": SHA}],
            "withdrawn_at": "2024-01-02T03:04:05Z",
            "withdraw_reason": "r",
        },
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\nnot json\n[1]\n"
    records = _read(text, "jsonl")
    one, two, three, four, five, six = records
    assert one.status is EntryStatus.disabled and one.signals[0].quality == 50
    assert [s.type for s in two.signals] == ["pdq", "md5"]
    assert two.note is None and two.external_id is None  # the file name is not kept
    assert isinstance(three, Invalid) and three.line == 3
    assert four.status is EntryStatus.withdrawn and four.withdrawn_at.year == 2024
    assert isinstance(five, Invalid) and "invalid JSON" in five.reason and five.line == 5
    assert isinstance(six, Invalid) and six.line == 6


def test_tx_lines() -> None:
    text = (
        "# python-threatexchange local_file\n"
        f"pdq {PDQ[0]}\n"
        f"video_md5 {MD5.upper()}\n"
        f"video_sha256 {SHA}\n"
        f"phash:d1c1b2a3c4e5f607\n"
        "\n"
        "url https://example.com\n"
        f"{PDQ[1]}\n"
    )
    records = _read(text, "tx")
    assert [r.signals[0].type for r in records[:4]] == ["pdq", "md5", "sha256", "phash"]
    assert records[1].signals[0].value == MD5
    assert isinstance(records[4], Invalid) and records[4].line == 7
    assert "unknown signal type 'url'" in records[4].reason
    assert isinstance(records[5], Invalid) and "no signal type" in records[5].reason
    bare = _read(f"{PDQ[1]}\n", "tx", signal_type="pdq")
    assert bare[0].signals == (Signal("pdq", PDQ[1]),)


def test_stopncii_records_withdrawals_and_shapes() -> None:
    records = [
        _stopncii(PDQ[0], "Received", {"a": "Received", "b": "Received"}),
        _stopncii(PDQ[1], "Withdrawn"),
        _stopncii(PDQ[2], "Active", {"a": "Withdrawn", "b": "Deleted"}),
        _stopncii(PDQ[3], "Active", {"a": "Withdrawn", "b": "Active"}),
        _stopncii(PDQ[4], "Deleted", []),
        _stopncii(MD5, signalType="VideoMD5", cases={}),
        _stopncii("abc", signalType="Text"),
    ]
    text = "\n".join(json.dumps(r) for r in records)
    parsed = _read(text, "stopncii")
    statuses = [r.status for r in parsed[:6]]
    W, A = EntryStatus.withdrawn, EntryStatus.active
    assert statuses == [A, W, W, A, W, A]
    assert parsed[0].case_ref == "a,b"
    assert parsed[1].withdrawn_at.timestamp() == 1625175071
    assert "every case" in parsed[2].withdraw_reason
    assert parsed[5].signals[0].type == "md5"
    assert isinstance(parsed[6], Invalid) and "unsupported StopNCII signalType" in parsed[6].reason
    # The same records as a FetchHashes page, a JSON array, and pretty-printed.
    page = {"count": 7, "nextPageToken": "x", "hasMoreRecords": False, "hashRecords": records}
    for text in (json.dumps(page), json.dumps(records), json.dumps(page, indent=2)):
        again = _read(text, "stopncii")
        assert [getattr(r, "status", None) for r in again[:6]] == statuses


def test_stopncii_document_errors_name_the_record() -> None:
    records = [_stopncii(PDQ[0]), _stopncii("xyz")]
    parsed = _read(json.dumps(records, indent=2), "stopncii")
    assert isinstance(parsed[1], Invalid) and str(parsed[1]).startswith("record 2:")
    with pytest.raises(ImportFailed):
        _read('[{"hashValue": ', "stopncii")


# --- import and export on both engines ------------------------------------------------------


@pytest.fixture
def bank(store: Store) -> str:
    with store.begin() as session:
        banks.create_bank(session, "b", actor="t")
    return "b"


def _import(store: Store, text: str, fmt: str, **kwargs: object) -> entries.AddSummary:
    with store.begin() as session:
        return transfer.import_records(session, "b", io.StringIO(text), fmt, actor="t", **kwargs)


def _export(store: Store, fmt: str, bank: str = "b") -> str:
    out = io.StringIO()
    with store.read() as session:
        transfer.export_bank(session, bank, out, fmt)
    return out.getvalue()


def _state(store: Store) -> tuple[str, int, int]:
    with store.read() as session:
        audits = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        changes = session.scalar(select(func.count()).select_from(Change)) or 0
    return _export(store, "jsonl"), audits, changes


CSV = "signal_type,value,quality,status,external_id,case_ref,note\n" + "".join(
    f"pdq,{value},{50 + i},,ext-{i},C-{i},\n" for i, value in enumerate(PDQ[:10])
)


def test_reimporting_the_same_file_adds_nothing(store: Store, bank: str) -> None:
    first = _import(store, CSV, "csv")
    assert (first.added, first.present) == (10, 0)
    before = _export(store, "jsonl")
    second = _import(store, CSV, "csv")
    assert (second.added, second.present) == (0, 10)
    assert _export(store, "jsonl") == before


@pytest.mark.parametrize("bad_line", [2, 6, 11])
def test_a_bad_row_leaves_the_bank_exactly_as_before(
    store: Store, bank: str, bad_line: int
) -> None:
    _import(store, "signal_type,value\n" + "".join(f"md5,{i:032x}\n" for i in range(3)), "csv")
    before = _state(store)
    lines = CSV.splitlines(keepends=True)
    lines[bad_line - 1] = "pdq,not-a-hash,,,,,\n"
    with pytest.raises(ImportFailed) as raised:
        _import(store, "".join(lines), "csv")
    assert raised.value.line == bad_line
    assert "not-a-hash" in str(raised.value)
    assert _state(store) == before


def test_skip_invalid_imports_the_rest_and_reports_every_line(store: Store, bank: str) -> None:
    lines = CSV.splitlines(keepends=True)
    lines[3] = "pdq,zz\n"
    lines[7] = "nope,abc\n"
    skipped: list[Invalid] = []
    summary = _import(store, "".join(lines), "csv", skip_invalid=True, on_skip=skipped.append)
    assert summary.added == 8 and summary.skipped == 2
    assert [s.line for s in skipped] == [4, 8]


def test_a_stopncii_record_withdraws_an_entry(store: Store, bank: str) -> None:
    active = "\n".join(json.dumps(_stopncii(v)) for v in PDQ[:3])
    assert _import(store, active, "stopncii").added == 3
    update = json.dumps(
        {"hashRecords": [_stopncii(PDQ[1], "Withdrawn"), _stopncii(PDQ[5], "Deleted")]}
    )
    summary = _import(store, update, "stopncii")
    assert (summary.added, summary.present, summary.withdrawn) == (1, 1, 2)
    with store.read() as session:
        listed = entries.list_entries(session, "b").entries
        events = history.audit_events(session)
    status = {e.signals[0].value: e.status for e in listed}
    assert status == {
        PDQ[0]: EntryStatus.active,
        PDQ[1]: EntryStatus.withdrawn,
        PDQ[2]: EntryStatus.active,
        PDQ[5]: EntryStatus.withdrawn,
    }
    withdrawn = next(e for e in listed if e.signals[0].value == PDQ[1])
    assert withdrawn.withdrawn_at is not None and withdrawn.withdrawn_at.timestamp() == 1625175071
    assert withdrawn.withdraw_reason == "StopNCII hashStatus Withdrawn"
    assert [e.action for e in events[:2]] == ["bank.import", "entry.withdraw"]
    # The old feed again does not bring it back.
    assert _import(store, active, "stopncii").present == 3
    with store.read() as session:
        assert entries.get_entry(session, withdrawn.id).status is EntryStatus.withdrawn


def test_round_trips_keep_entries_signals_and_status(store: Store, bank: str) -> None:
    items = [
        NewEntry((Signal("pdq", PDQ[0], 77), Signal("md5", MD5), Signal("sha256", SHA))),
        NewEntry((Signal("pdq", PDQ[1], 60),), external_id="x,1", case_ref="C", note='say "hi"'),
        NewEntry((Signal("phash", "d1c1b2a3c4e5f607"),), status=EntryStatus.withdrawn),
    ]
    with store.begin() as session:
        ingest.add_entries(session, "b", items, actor="t")
        banks.create_bank(session, "csv", actor="t")
        banks.create_bank(session, "jsonl", actor="t")

    def shape(bank_name: str) -> list[tuple]:
        with store.read() as session:
            listed = entries.list_entries(session, bank_name).entries
        return [(e.signals, e.status, e.external_id, e.case_ref, e.note) for e in listed]

    for fmt in ("csv", "jsonl"):
        exported = _export(store, fmt)
        with store.begin() as session:
            transfer.import_records(session, fmt, io.StringIO(exported), fmt, actor="t")
        assert shape(fmt) == shape("b"), fmt


def test_tx_export_has_active_entries_in_pytx_names(store: Store, bank: str) -> None:
    items = [
        NewEntry((Signal("pdq", PDQ[0]), Signal("md5", MD5), Signal("phash", "d1c1b2a3c4e5f607"))),
        NewEntry((Signal("pdq", PDQ[1]),), status=EntryStatus.withdrawn),
        NewEntry((Signal("sha256", SHA),)),
    ]
    with store.begin() as session:
        ingest.add_entries(session, "b", items, actor="t")
        summary = transfer.export_bank(session, "b", out := io.StringIO(), "tx")
    # A photo's digest is a photo_md5 (issue 13 item 7); a digest-only entry keeps video_*.
    assert out.getvalue() == f"pdq {PDQ[0]}\nphoto_md5 {MD5}\nvideo_sha256 {SHA}\n"
    assert (summary.entries, summary.signals, summary.left_out) == (3, 3, 2)
    # ...and read back by the tx reader.
    assert _import(store, out.getvalue(), "tx").present == 3


def test_export_of_an_empty_bank_and_a_missing_one(store: Store, bank: str) -> None:
    assert _export(store, "csv") == ",".join(formats.CSV_COLUMNS) + "\n"
    assert _export(store, "jsonl") == ""
    with pytest.raises(Exception, match="no bank"):
        _export(store, "csv", bank="nope")


def test_export_streams_in_chunks(store: Store, bank: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "EXPORT_CHUNK", 3)
    _import(store, CSV, "csv")
    with store.read() as session:
        bank_id = banks.get_bank(session, "b").id
        stream = transfer.iter_entries(session, bank_id, "b")
        first = next(stream)
        rest = list(stream)
    assert first.signals[0].value == PDQ[0]
    assert len(rest) == 9


def test_export_memory_does_not_grow_with_the_bank(
    store: Store, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed: the Python heap peak of an export is the same for 500 and 5,000 entries."""
    monkeypatch.setattr(transfer, "EXPORT_CHUNK", 100)

    def peak_while_exporting() -> int:
        out = _NullWriter()
        tracemalloc.start()
        try:
            with store.read() as session:
                transfer.export_bank(session, "b", out, "jsonl")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def fill(start: int, stop: int) -> None:
        text = "signal_type,value\n" + "".join(f"pdq,{i:064x}\n" for i in range(start, stop))
        _import(store, text, "csv")

    fill(1, 501)
    small = peak_while_exporting()
    fill(501, 5_001)
    large = peak_while_exporting()
    assert large < small * 1.5 + 256 * 1024, (small, large)


class _NullWriter(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)
