"""Hash list file formats: read records for import, write entries for export. Streaming both
ways; no database code here.

``csv``
    Header required; columns ``signal_type,value`` and optionally ``quality,status,external_id,
    case_ref,note`` (others ignored). Consecutive rows with the same non-empty ``entry`` value
    form one entry (exports write it, so multi-signal entries survive a round trip). The CSV
    ``ncii hash --format csv`` prints (a column per signal type) is accepted too.
``jsonl``
    One object per line: ``{"signal_type", "value", "quality", "status", …}`` or
    ``{"signals": [{"type", "value", "quality"}], …}`` (what exports and
    ``ncii hash --format jsonl`` write). ``"variants"``: ncii's own detection data, PDQ hashes
    of crops, rotations and the picture's region as ``{"variant", "type": "pdq", "value",
    "quality"}`` objects (exports write them; other tools may ignore them). A video's
    ``"vpdq"``: a list of ``{"frame", "quality", "pdq", "timestamp"}`` objects (exports,
    ``ncii hash``) or Meta's vPDQ text, ``frame,quality,pdqhex,timestamp`` lines, in one
    string; the only format that carries video frames.
``tx``
    python-threatexchange's ``local_file`` format: ``<signal_type> <hash>`` per line, with
    pytx's type names (``pdq``, ``video_md5``, …) or ncii's; ``TYPE:VALUE`` and, given a
    default type, bare hashes are read too. Blank lines and ``#`` comments are skipped.
``stopncii``
    Records shaped like StopNCII's FetchHashes response: JSON lines, a JSON array, or response
    pages with ``hashRecords``. A record whose ``hashStatus``, or every one of whose case
    statuses, is ``Withdrawn``/``Deleted`` is a withdrawal; a status python-threatexchange
    does not know is refused rather than taken as active.

Hostile input is one bad record, never a crash: a line that is not UTF-8, JSON with a number of
more than 4,300 digits or nested more than 512 deep, a frame number past 2³¹ − 1, a NUL in a
text field, or a CSV quote never closed (the rows after it are read again) is reported with
its line, and skipped under ``--skip-invalid``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from operator import itemgetter
from typing import Any, TextIO

from ncii.detection import BankHash
from ncii.errors import ImportFailed, NciiError
from ncii.service import jsontext
from ncii.service.case_package import MAX_VARIANTS
from ncii.service.entries import EntryInfo, Invalid, NewEntry, effective_status
from ncii.signals import IMAGE_SIGNALS, SIGNAL_TYPES, Signal, SignalType, get_signal_type
from ncii.signals.vpdq import VpdqFrame, parse_vpdq
from ncii.store.models import VARIANT_LENGTH, EntryStatus, utcnow


class ImportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    tx = "tx"
    stopncii = "stopncii"


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    tx = "tx"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Values for records that do not carry their own (``--case``, ``--note``, …)."""

    external_id: str | None = None
    case_ref: str | None = None
    note: str | None = None
    signal_type: str | None = None
    """The type of bare hashes in a ``tx`` file (a line with no type)."""


Record = NewEntry | Invalid

CSV_COLUMNS = (
    "entry",
    "signal_type",
    "value",
    "quality",
    "status",
    "external_id",
    "case_ref",
    "note",
)

TX_NAMES = {
    "pdq": "pdq",
    "video_md5": "md5",
    "photo_md5": "md5",
    "md5": "md5",
    "video_sha256": "sha256",
    "sha256": "sha256",
} | {name: name for name in SIGNAL_TYPES}
"""python-threatexchange (and ncii) signal type names → ncii's."""

TX_EXPORT_NAMES = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}
"""ncii's types that python-threatexchange knows, by pytx's names; others are not exported."""
TX_PHOTO_EXPORT_NAMES = {"pdq": "pdq", "md5": "photo_md5"}
"""The same for a photo's entry (one with a picture hash): its digests are a photo's, not a
video's, and pytx has no photo SHA-256."""

STOPNCII_TYPES = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
STOPNCII_GONE = frozenset({"Withdrawn", "Deleted"})
STOPNCII_STATUSES = frozenset({"Unknown", "Received", "Active"}) | STOPNCII_GONE
"""python-threatexchange's ``StopNCIICaseStatus`` values; any other is refused."""


def read_records(
    stream: TextIO, fmt: ImportFormat | str, *, defaults: Provenance | None = None
) -> Iterator[Record]:
    """Parse ``stream`` lazily into entries to add, or :class:`Invalid` records (with their line
    numbers). Problems with the file as a whole (a missing CSV header) raise
    :class:`~ncii.errors.ImportFailed`."""
    defaults = defaults or Provenance()
    reconfigure = getattr(stream, "reconfigure", None)  # a file, or a wrapper counting one
    if reconfigure is not None:
        # Undecodable bytes become lone surrogates, reported with their line (not UTF-8).
        reconfigure(errors="surrogateescape")
    readers: dict[ImportFormat, Callable[[TextIO, Provenance], Iterator[Record]]] = {
        ImportFormat.csv: _read_csv,
        ImportFormat.jsonl: _read_jsonl,
        ImportFormat.tx: _read_tx,
        ImportFormat.stopncii: _read_stopncii,
    }
    return readers[ImportFormat(fmt)](stream, defaults)


def _entry(line: int, defaults: Provenance, unit: str = "line", **fields: Any) -> Record:
    """A NewEntry from parsed fields, with the defaults filled in, or why it is invalid."""
    try:
        for name in ("external_id", "case_ref", "note"):
            fields[name] = _text(fields.get(name)) or getattr(defaults, name)
        return NewEntry(line=line, source=None if unit == "line" else f"{unit} {line}", **fields)
    except NciiError as exc:
        return Invalid(line, str(exc), unit)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_SIGNAL_TYPES: dict[str, SignalType] = {}


def _signal_type(kind: Any) -> SignalType:
    """The signal type called ``kind`` (any case, spaces around), remembered by spelling."""
    signal_type = _SIGNAL_TYPES.get(kind) if isinstance(kind, str) else None
    if signal_type is None and isinstance(kind, str) and len(kind) > jsontext.SHOWN_LENGTH:
        raise _Bad(f"unknown signal type {jsontext.shown(kind)}")  # not echoed in full
    if signal_type is None:
        signal_type = get_signal_type(str(kind or ""))
        if isinstance(kind, str) and len(_SIGNAL_TYPES) < 64:
            _SIGNAL_TYPES[kind] = signal_type
    return signal_type


def _signal(kind: Any, value: Any, quality: int | None) -> Signal:
    """``Signal.of`` with the type lookup cached: it runs once per row of an import."""
    signal_type = _signal_type(kind)
    return Signal(signal_type.name, signal_type.parse(value), quality)


def _quality(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Bad(f"invalid quality {jsontext.shown(value)}: expected 0-100")
    try:
        number = int(value)
    except ValueError:
        raise _Bad(f"invalid quality {jsontext.shown(value)}: expected 0-100") from None
    if not 0 <= number <= 100:
        raise _Bad(f"invalid quality {jsontext.shown(value)}: expected 0-100")
    return number


_STATUSES = {status.value: status for status in EntryStatus} | {"": EntryStatus.active}


def _status(value: Any) -> EntryStatus:
    if value is None:
        return EntryStatus.active
    status = _STATUSES.get(value) if isinstance(value, str) else None
    if status is None:
        status = _STATUSES.get(str(value).strip().lower())
    if status is None:
        raise _Bad(
            f"invalid status {jsontext.shown(value)}: expected active, disabled or withdrawn"
        )
    return status


def _time(value: Any, what: str) -> dt.datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"invalid {what} {jsontext.shown(text)}: expected an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Bad(NciiError):
    """A field that does not parse; becomes an Invalid record."""


NOT_UTF8 = "not UTF-8 text"


# --- csv --------------------------------------------------------------------------------------


class _CsvLines:
    """The physical lines of a CSV stream for ``csv.reader``: remembers the lines the current
    record took (``taken``, the first being line ``line``) and takes lines back, so a record
    that swallowed the rows after an unterminated quote can be re-read from its second line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = iter(stream)
        self._back: list[str] = []
        self.taken: list[str] = []
        self.line = 1
        self.exhausted = False

    def feed(self) -> Iterator[str]:
        """Lines given back first, then the stream's (a generator: cheaper than ``__next__``
        on the hot path of a million-row import)."""
        self.exhausted = False
        taken, back = self.taken, self._back
        while back:
            text = back.pop()
            taken.append(text)
            yield text
        for text in self._stream:
            taken.append(text)
            yield text
        self.exhausted = True

    def done(self, count: int) -> None:
        """The first ``count`` taken lines are read: drop them, give back the rest."""
        self._back.extend(reversed(self.taken[count:]))
        self.line += len(self.taken) if count >= len(self.taken) else count
        self.taken.clear()


CsvRecord = tuple[int, list[str] | None, str | None]
"""(first line, cells, None), or (line, None, why) for a record that cannot be read."""


def _csv_records(stream: TextIO) -> Iterator[CsvRecord]:
    """Every CSV record with the line it starts on, surviving malformed ones.

    A quoted field may span lines (exports quote notes with line breaks), but a record that
    reaches the end of the file inside quotes, or one of whose later lines is alone a complete
    row of the header's width, is an unterminated quote: its first line is reported and the lines
    after it are read again, so one stray quote does not swallow the rows after it.
    """
    lines = _CsvLines(stream)
    taken = lines.taken
    width = 0
    while True:
        reader = csv.reader(lines.feed())
        try:
            for row in reader:
                first = lines.line
                if len(taken) == 1 and not lines.exhausted:
                    text = taken[0]
                    taken.clear()
                    lines.line = first + 1
                elif lines.exhausted or _swallowed(taken[1:], width):
                    lines.done(1)
                    yield first, None, "malformed CSV: a quoted field is never closed"
                    break  # a fresh reader from the line after
                else:
                    text = "".join(taken)
                    lines.done(len(taken))
                if not width:
                    width = len(row)  # the header's
                if any(row):  # skip blank lines (and rows of empty cells)
                    yield first, row, None if text.isascii() else _undecodable(row)
            else:
                return
        except csv.Error as exc:
            if not taken:
                return
            first = lines.line
            lines.done(1)
            yield first, None, f"malformed CSV: {exc}"


def _undecodable(row: list[str]) -> str | None:
    for cell in row:
        if not cell.isascii() and jsontext.undecodable(cell):
            return NOT_UTF8
    return None


def _swallowed(later: list[str], width: int) -> bool:
    """Whether any of a record's later lines is, alone, a row of the header's width."""
    if width < 2:
        return False
    for text in later:
        try:
            cells = next(csv.reader([text]), [])
        except csv.Error:
            continue
        if len(cells) == width:
            return True
    return False


def _read_csv(stream: TextIO, defaults: Provenance) -> Iterator[Record]:
    """Reads the header at once (a bad one fails the import before anything is stored)."""
    records = _csv_records(stream)
    try:
        line, header, error = next(records)
    except StopIteration:
        return iter(())
    if header is None or error is not None:
        raise ImportFailed(line, f"unreadable CSV header ({error})")
    columns = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    if "signal_type" in columns and "value" in columns:
        if "entry" in columns:
            return _group_csv(_csv_rows(records, columns, defaults, keyed=True))
        return _csv_rows(records, columns, defaults, keyed=False)
    if any(name in columns for name in SIGNAL_TYPES):
        return _hash_csv_rows(records, columns, defaults)
    raise ImportFailed(
        1,
        "no signal_type and value columns in the CSV header (expected "
        + ",".join(CSV_COLUMNS[1:])
        + ", or the columns of `ncii hash --format csv`)",
    )


def _csv_rows(
    records: Iterator[CsvRecord], columns: dict[str, int], defaults: Provenance, *, keyed: bool
) -> Iterator[Any]:
    """Records, or with ``keyed`` (entry key, record) pairs for grouping."""
    # The hot loop of a million-row import: kept flat, columns looked up once.
    names = (
        "entry",
        "signal_type",
        "value",
        "quality",
        "status",
        "external_id",
        "case_ref",
        "note",
    )
    present = [columns.get(name, -1) for name in names]
    limit = max(present) + 1
    # Cells are read from row[:limit] + padding; an absent column reads from the padding.
    fields = itemgetter(*(i if i >= 0 else limit + n for n, i in enumerate(present)))
    padding = [""] * (limit + len(names))
    external_default, case_default, note_default = (
        defaults.external_id,
        defaults.case_ref,
        defaults.note,
    )
    statuses = _STATUSES
    types = _SIGNAL_TYPES
    for line, row, error in records:
        if row is None or error is not None:
            invalid = Invalid(line, error or "malformed CSV")
            yield (None, invalid) if keyed else invalid
            continue
        entry, kind, value, quality, status, external_id, case_ref, note = fields(
            row[:limit] + padding
        )
        try:
            signal_type = types.get(kind) or _signal_type(kind)
            record: Record = NewEntry(
                (
                    Signal(
                        signal_type.name,
                        signal_type.parse(value),
                        _quality(quality) if quality else None,
                    ),
                ),
                statuses.get(status) or _status(status),
                external_id.strip() or external_default,
                case_ref.strip() or case_default,
                note.strip() or note_default,
                line=line,
            )
        except NciiError as exc:
            record = Invalid(line, str(exc))
        yield (entry.strip() or None, record) if keyed else record


def _group_csv(rows: Iterable[tuple[str | None, Record]]) -> Iterator[Record]:
    """Merge consecutive valid rows sharing an ``entry`` key into one entry."""
    group_key: str | None = None
    group: NewEntry | None = None
    for key, record in rows:
        if isinstance(record, Invalid):
            if group is not None and (key is None or key != group_key):
                yield group  # keep records in file order
                group = group_key = None
            yield record
            continue
        if group is not None and key is not None and key == group_key:
            group = replace(group, signals=group.signals + record.signals)
            continue
        if group is not None:
            yield group
        group, group_key = record, key
    if group is not None:
        yield group


def _hash_csv_rows(
    records: Iterator[CsvRecord], columns: dict[str, int], defaults: Provenance
) -> Iterator[Record]:
    """Rows of ``ncii hash --format csv``: one file per row, a column per signal type."""
    types = [name for name in SIGNAL_TYPES if name in columns]
    for line, row, error in records:
        if row is None or error is not None:
            yield Invalid(line, error or "malformed CSV")
            continue
        cells = {name: row[i] if i < len(row) else "" for name, i in columns.items()}
        if _text(cells.get("error")):
            yield Invalid(line, f"the file was not hashed: {cells['error']}")
            continue
        try:
            signals = tuple(
                _signal(kind, cells[kind], _quality(cells.get(f"{kind}_quality")))
                for kind in types
                if _text(cells.get(kind))
            )
        except NciiError as exc:
            yield Invalid(line, str(exc))
            continue
        yield _entry(line, defaults, signals=signals)


# --- jsonl ------------------------------------------------------------------------------------


def _read_jsonl(stream: TextIO, defaults: Provenance) -> Iterator[Record]:
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            data = _json_line(text, line)
        except jsontext.BadJson as exc:
            yield Invalid(line, exc.reason)
            continue
        yield _json_record(line, data, defaults)


def _json_line(text: str, line: int) -> Any:
    """One line's JSON; :class:`~ncii.service.jsontext.BadJson` if it is not UTF-8 or not JSON
    (hostile JSON included: huge numbers, deep nesting)."""
    if not text.isascii() and jsontext.undecodable(text):
        raise jsontext.BadJson(line, NOT_UTF8)
    return jsontext.loads(text, first_line=line)


def _json_record(line: int, data: Any, defaults: Provenance) -> Record:
    if not isinstance(data, dict):
        return Invalid(line, "expected a JSON object")
    try:
        if data.get("error"):
            raise _Bad(f"the file was not hashed: {data['error']}")
        if "signals" in data:
            listed = data["signals"]
            if not isinstance(listed, list) or not all(isinstance(s, dict) for s in listed):
                raise _Bad('"signals" must be a list of {"type", "value", "quality"} objects')
            signals = tuple(
                _signal(
                    s.get("type") or s.get("signal_type"),
                    s.get("value"),
                    _quality(s.get("quality")),
                )
                for s in listed
            )
        else:
            signals = (
                _signal(data.get("signal_type"), data.get("value"), _quality(data.get("quality"))),
            )
        status = _status(data.get("status"))
        fields: dict[str, Any] = {
            "signals": signals,
            "status": status,
            "external_id": data.get("external_id"),
            "case_ref": data.get("case_ref"),
            "note": data.get("note"),
        }
        if data.get("vpdq"):
            fields["frames"] = _vpdq(data["vpdq"], "vpdq")
        if data.get("variants"):
            fields["variants"] = _variants(data["variants"])
        if status is EntryStatus.disabled:
            fields["disabled_until"] = _time(data.get("disabled_until"), "disabled_until")
        if status is EntryStatus.withdrawn:
            fields["withdrawn_at"] = _time(data.get("withdrawn_at"), "withdrawn_at")
            fields["withdraw_reason"] = _text(data.get("withdraw_reason"))
    except NciiError as exc:
        return Invalid(line, str(exc))
    return _entry(line, defaults, **fields)


def _vpdq(value: Any, where: str) -> tuple[VpdqFrame, ...]:
    """A video's frames: a list of frame objects, or Meta's vPDQ text in one string. ``where``
    names the field only: the caller's message names the line."""
    if isinstance(value, str):
        frames = tuple(parse_vpdq(value, name=where))
    elif isinstance(value, list):
        frames = tuple(
            VpdqFrame.from_dict(item, where=f"{where} frame {number}")
            for number, item in enumerate(value, 1)
        )
    else:
        raise _Bad('"vpdq" must be a list of {"frame", "quality", "pdq", "timestamp"} objects')
    for number, frame in enumerate(frames, 1):
        jsontext.check_frame_index(frame.index, f"{where} frame {number}")
    return frames


def _variants(value: Any) -> tuple[BankHash, ...]:
    """ncii's own detection data (PDQ hashes of crops, rotations, the picture's region), as
    ncii's jsonl export writes it; restored so the importing bank detects what the exporter's
    did."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Bad('"variants" must be a list of {"variant", "type", "value", "quality"} objects')
    if len(value) > MAX_VARIANTS:
        raise _Bad(f"more than {MAX_VARIANTS} variants")
    found = []
    for item in value:
        label = item.get("variant")
        if not isinstance(label, str) or not 0 < len(label) <= VARIANT_LENGTH:
            raise _Bad(f"invalid variant label {jsontext.shown(label)}")
        if item.get("type", "pdq") != "pdq":
            raise _Bad(f"variant {label}: only pdq variants exist, not {item.get('type')!r}")
        quality = _quality(item.get("quality"))
        value = _signal("pdq", item.get("value"), quality).value
        found.append(BankHash(label, value, quality or 0))
    return tuple(found)


# --- tx ---------------------------------------------------------------------------------------


def _read_tx(stream: TextIO, defaults: Provenance) -> Iterator[Record]:
    known = ", ".join(sorted(TX_NAMES))
    for line, text in enumerate(stream, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        kind, _, value = text.partition(" ")
        if not value and ":" in kind:
            kind, _, value = kind.partition(":")
        if not value:
            if defaults.signal_type is None:
                yield Invalid(line, "no signal type: write '<type> <hash>' or give a default type")
                continue
            kind, value = defaults.signal_type, text
        name = TX_NAMES.get(kind.strip().lower())
        if name is None:
            yield Invalid(line, f"unknown signal type {jsontext.shown(kind)} (known: {known})")
            continue
        try:
            signal = _signal(name, value.strip(), None)
        except NciiError as exc:
            yield Invalid(line, str(exc))
            continue
        yield _entry(line, defaults, signals=(signal,))


# --- stopncii ---------------------------------------------------------------------------------


def _read_stopncii(stream: TextIO, defaults: Provenance) -> Iterator[Record]:
    lines = iter(stream)
    first = True
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = _json_line(text, line)
        except jsontext.BadJson as exc:
            if first and exc.syntax and text.lstrip().startswith(("[", "{")):
                # A (pretty-printed) JSON document rather than JSON lines: read it whole.
                yield from _stopncii_document(text + "".join(lines), line, defaults)
                return
            yield Invalid(line, exc.reason)
            continue
        finally:
            first = False
        if isinstance(data, list):
            for index, record in enumerate(data, start=1):
                yield _stopncii_record(index, record, defaults, unit="record")
        elif isinstance(data, dict) and "hashRecords" in data:
            yield from _stopncii_page(line, data, defaults)
        else:
            yield _stopncii_record(line, data, defaults)


def _stopncii_document(text: str, first_line: int, defaults: Provenance) -> Iterator[Record]:
    if not text.isascii() and jsontext.undecodable(text):
        lines = enumerate(text.splitlines(), first_line)
        raise ImportFailed(next(n for n, t in lines if jsontext.undecodable(t)), NOT_UTF8)
    try:
        data = jsontext.loads(text, first_line=first_line)
    except jsontext.BadJson as exc:
        raise ImportFailed(exc.line, exc.reason) from None
    if isinstance(data, dict) and "hashRecords" in data:
        data = data["hashRecords"]
    if not isinstance(data, list):
        raise ImportFailed(
            1, "expected StopNCII hash records, a list of them or a FetchHashes page"
        )
    for index, record in enumerate(data, start=1):
        yield _stopncii_record(index, record, defaults, unit="record")


def _stopncii_page(line: int, page: dict[str, Any], defaults: Provenance) -> Iterator[Record]:
    records = page["hashRecords"]
    if not isinstance(records, list):
        yield Invalid(line, '"hashRecords" is not a list')
        return
    for record in records:
        yield _stopncii_record(line, record, defaults)


def _stopncii_record(line: int, record: Any, defaults: Provenance, *, unit: str = "line") -> Record:
    try:
        if not isinstance(record, dict):
            raise _Bad("expected a StopNCII hash record (a JSON object)")
        signal_type = record.get("signalType")
        kind = STOPNCII_TYPES.get(str(signal_type))
        if kind is None:
            raise _Bad(
                f"unsupported StopNCII signalType {jsontext.shown(signal_type)} "
                f"(ncii stores {', '.join(STOPNCII_TYPES)})"
            )
        signal = _signal(kind, record.get("hashValue"), None)
        cases = _stopncii_cases(record.get("caseNumbers"))
        modified = _epoch(record.get("lastModtimestamp"))
        hash_status = _stopncii_status(record.get("hashStatus"), "hashStatus")
        gone = hash_status in STOPNCII_GONE
        all_cases_gone = bool(cases) and all(str(s) in STOPNCII_GONE for s in cases.values())
        fields: dict[str, Any] = {
            "signals": (signal,),
            "external_id": record.get("externalId") or record.get("hashId"),
            "case_ref": ",".join(sorted(str(c) for c in cases)) or None,
        }
        if gone or all_cases_gone:
            fields["status"] = EntryStatus.withdrawn
            fields["withdrawn_at"] = modified
            fields["withdraw_reason"] = (
                f"StopNCII hashStatus {hash_status}"
                if gone
                else "StopNCII: every case withdrawn or deleted"
            )
    except NciiError as exc:
        return Invalid(line, str(exc), unit)
    return _entry(line, defaults, unit, **fields)


def _stopncii_status(value: Any, field: str) -> str:
    """A known StopNCII status (empty when absent): an unknown one is not taken as active."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value not in STOPNCII_STATUSES:
        raise _Bad(
            f"unknown StopNCII {field} {jsontext.shown(value)} "
            f"(known: {', '.join(sorted(STOPNCII_STATUSES))})"
        )
    return value


def _stopncii_cases(value: Any) -> dict[str, str]:
    """``caseNumbers``: case number → known status, each number storable text."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise _Bad('"caseNumbers" must map case numbers to statuses')
    for number, status in value.items():
        problem = jsontext.unstorable(number)
        if problem is not None:
            raise _Bad(f"caseNumbers: case number {jsontext.shown(number)} {problem}")
        _stopncii_status(status, f"status of case {jsontext.shown(number)}")
    return value


def _epoch(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _Bad(
            f"invalid lastModtimestamp {jsontext.shown(value)}: expected Unix seconds"
        ) from None


# --- export -----------------------------------------------------------------------------------


class UnexportableEntry(NciiError):
    """An entry holding a number JSON cannot carry (a video frame time of Infinity or NaN,
    stored before imports checked them): exporting it would write a file nothing reads."""


def _json_entry(entry: EntryInfo) -> str:
    try:
        return json.dumps(
            entry.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError:
        raise UnexportableEntry(
            f"entry {entry.id}: a video frame time is not a finite number (Infinity and NaN "
            "are not JSON); withdraw the entry and add the video again"
        ) from None


@dataclass(slots=True)
class ExportCounts:
    entries: int = 0
    signals: int = 0
    left_out: int = 0
    """Signals the format cannot carry (tx: types pytx lacks, entries not active)."""
    frames: int = 0
    """Video frames written (jsonl) or, in formats that cannot carry them, left out."""


def write_records(
    entries: Iterable[EntryInfo], fmt: ExportFormat | str, out: TextIO
) -> ExportCounts:
    """Write ``entries`` to ``out`` as they arrive; returns what was written."""
    counts = ExportCounts()
    fmt = ExportFormat(fmt)
    if fmt is ExportFormat.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            counts.entries += 1
            for signal in entry.signals:
                counts.signals += 1
                writer.writerow(
                    (
                        entry.id,
                        signal.type,
                        signal.value,
                        "" if signal.quality is None else signal.quality,
                        entry.status.value,
                        entry.external_id or "",
                        entry.case_ref or "",
                        entry.note or "",
                    )
                )
    elif fmt is ExportFormat.jsonl:
        for entry in entries:
            counts.entries += 1
            counts.signals += len(entry.signals)
            counts.frames += len(entry.frames)
            out.write(_json_entry(entry))
            out.write("\n")
    else:
        now = utcnow()
        for entry in entries:
            counts.entries += 1
            active = effective_status(entry.status, entry.disabled_until, now)
            photo = any(signal.type in IMAGE_SIGNALS for signal in entry.signals)
            names = TX_PHOTO_EXPORT_NAMES if photo else TX_EXPORT_NAMES
            for signal in entry.signals:
                name = names.get(signal.type)
                if name is None or active is not EntryStatus.active:
                    counts.left_out += 1
                    continue
                counts.signals += 1
                out.write(f"{name} {signal.value}\n")
    return counts
