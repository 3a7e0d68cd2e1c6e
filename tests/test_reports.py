"""`ncii report` on both engines: the compliance figures on a fixed clock, as JSON and a table,
and the PNG chart drawn from them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii import hash_file
from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.service import cases, match_log, reports, takedowns
from ncii.service.matching import BankMatch
from ncii.service.report_chart import SERIES
from ncii.service.takedowns import NewTakedown
from ncii.store.engine import Store
from ncii.store.models import EntryStatus

T = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
START, END = dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
runner = CliRunner()

# (received, what became of it, when): removed after 2, 10, 47 and 50 hours, one rejected,
# one still open (overdue a month later), and one received before the period.
REQUESTS = [
    (T, "removed", T + 2 * H),
    (T + H, "removed", T + 11 * H),
    (T + 2 * H, "removed", T + 49 * H),
    (T + 24 * H, "removed", T + 74 * H),
    (T + 25 * H, "rejected", T + 26 * H),
    (T + 7 * 24 * H, None, None),
    (T - 5 * 24 * H, "removed", T - 4 * 24 * H),
]
EXPECTED = {
    "received": 6,
    "removed": 4,
    "removed_within_48h": 3,
    "removed_within_48h_pct": 60.0,  # 3 of the 5 valid (not rejected) requests
    "median_hours_to_removal": 28.5,  # of 2, 10, 47, 50
    "p90_hours_to_removal": 50.0,  # nearest rank: the 4th of 4
    "rejected": 1,
    "still_open": 1,
    "overdue": 1,
    "matches": 2,
    "withdrawals": 1,
    "entries_withdrawn": 2,
}


def _match(entry_id: int, distance: int, status: EntryStatus = EntryStatus.active) -> BankMatch:
    return BankMatch(
        bank="cases",
        entry_id=entry_id,
        signal_type="pdq",
        distance=distance,
        threshold=31,
        transform="original",
        status=status,
        case_ref=None,
        external_id=None,
        matched_value="0" * 64,
    )


@pytest.fixture
def history_of_march(store: Store) -> Store:
    with store.begin() as session:
        for received, outcome, when in REQUESTS:
            request = NewTakedown(
                signature="J. Doe",
                statement="non-consensual",
                contact="j@example.org",
                posts=("p1",),
                received_at=received,
            )
            made = takedowns.create_takedown(session, request, actor="t", now=received)
            if outcome is not None:
                reason = "not NCII" if outcome == "rejected" else None
                takedowns.advance(session, made.info.id, outcome, actor="t", reason=reason, at=when)
        items = [cases.entry_for(hash_file(VENDORED / n)) for n in ("q0291.jpg", "q0746.jpg")]
        opened = cases.open_case(session, items, actor="t", now=T)
        cases.withdraw_case(session, opened.number, actor="t", now=T + 3 * 24 * H)
        # Two uploads in March (the first matched one entry by two signals: counted once) …
        match_log.record_matches(session, [[_match(1, 4), _match(1, 0)]], at=T + H)
        disabled = _match(1, 31, EntryStatus.disabled)  # flagged, not blocked: not counted
        match_log.record_matches(session, [[_match(2, 9), disabled]], at=T + 2 * H)
        # … and one in April.
        match_log.record_matches(session, [[_match(2, 3)]], at=END + H)
    return store


def test_report_figures_on_a_fixed_clock(history_of_march: Store) -> None:
    with history_of_march.read() as session:
        report = reports.takedown_report(session, START, END, now=T + 30 * 24 * H)
    figures = report.to_dict()
    assert {k: figures[k] for k in EXPECTED} == EXPECTED
    days = [
        (d.day.day, d.received, d.removed_in_time, d.removed_late, d.rejected, d.open)
        for d in report.days
    ]
    assert days == [(3, 3, 3, 0, 0, 0), (4, 2, 0, 1, 1, 0), (10, 1, 0, 0, 0, 1)]
    with history_of_march.read() as session:
        before = reports.takedown_report(session, START, END, now=T + 7 * 24 * H + H)
        empty = reports.takedown_report(session, END, END + 24 * H)
    assert before.overdue == 0 and before.still_open == 1
    assert (empty.received, empty.removed_in_time_pct, empty.median_hours) == (0, None, None)
    assert empty.matches == 1


def test_report_cli_json_table_and_chart(
    history_of_march: Store, store_url: str, tmp_path: Path
) -> None:
    args = ["report", "--from", "2025-03-01", "--to", "2025-03-31", "--db", store_url]
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    figures = json.loads(as_json.stdout)
    assert {k: figures[k] for k in EXPECTED} == EXPECTED
    assert figures["from"] == "2025-03-01T00:00:00+00:00"
    assert figures["to"] == "2025-04-01T00:00:00+00:00"  # the whole last day
    table = runner.invoke(app, [*args, "-f", "table"])
    assert "removed_within_48h_pct" in table.stdout and "60.0" in table.stdout

    chart = tmp_path / "march.png"
    drawn = runner.invoke(app, [*args, "--chart", str(chart), "--json"])
    assert drawn.exit_code == 0, drawn.output
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (900, 480)
        counts = {colour: n for n, colour in image.convert("RGB").getcolors(1 << 20)}
    area = {name: counts.get(colour, 0) for name, _, colour in SERIES}
    # Bars are proportional: 3 removed in time, 1 late, 1 rejected, 1 open (+ legend swatches).
    swatch = 13 * 13
    bars = {name: n - swatch for name, n in area.items()}
    assert all(n > 0 for n in bars.values())
    assert bars["removed_late"] == bars["rejected"] == bars["open"]
    assert 2.9 < bars["removed_in_time"] / bars["removed_late"] < 3.1

    backwards = runner.invoke(app, ["report", "--from", "2025-03-31", "--to", "2025-03-01",
                                    "--db", store_url])  # fmt: skip
    assert backwards.exit_code == exit_codes.USAGE and "before it starts" in backwards.stderr
    garbled = runner.invoke(app, ["report", "--from", "March", "--db", store_url])
    assert garbled.exit_code == exit_codes.USAGE and "invalid --from 'March'" in garbled.stderr
