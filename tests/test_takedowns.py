"""TAKE IT DOWN Act requests on both engines, through the real CLI: each missing element is
refused, deadlines and the overdue list around 48 hours, the workflow's states, known copies
found in banks and scan reports, and notices to hosts."""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii import hash_file
from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.errors import IncompleteRequest, InvalidArgument
from ncii.service import history, takedowns
from ncii.service.takedowns import NewTakedown
from ncii.store.engine import Store
from ncii.store.models import TakedownState, utcnow

PHOTO = VENDORED / "square-512x512.jpg"
OTHER = VENDORED / "q0291.jpg"
runner = CliRunner()

ELEMENTS = {
    "signature": ["--signature", "Jane Doe"],
    "statement": ["--statement", "I did not consent to this image being published."],
    "contact": ["--contact", "jane@example.org"],
    "identification": ["--url", "https://img.example.com/p/1"],
}
MESSAGES = {
    "signature": "missing signature",
    "statement": "missing good-faith statement",
    "contact": "missing contact information",
    "identification": "missing identification of the depiction",
}
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _new(url: str, *extra: str, without: str | None = None):
    args = [a for name, pair in ELEMENTS.items() if name != without for a in pair]
    return ncii(url, "takedown", "new", *args, *extra, "-f", "jsonl")


def _copy(path: Path, target: Path, quality: int = 55) -> Path:
    with Image.open(path) as image:
        smaller = (image.width * 4 // 5, image.height * 4 // 5)
        ImageOps.mirror(image.convert("RGB")).resize(smaller).save(target, "JPEG", quality=quality)
    return target


def _request(received: dt.datetime, **kwargs: object) -> NewTakedown:
    fields: dict = {
        "signature": "Jane Doe",
        "statement": "not consensual",
        "contact": "jane@example.org",
        "urls": ("https://img.example.com/p/1",),
        "received_at": received,
    }
    return NewTakedown(**(fields | kwargs))


@pytest.mark.parametrize("missing", list(ELEMENTS))
def test_each_missing_element_is_refused_with_its_own_message(store_url: str, missing: str):
    result = _new(store_url, without=missing)
    assert result.exit_code == exit_codes.USAGE
    assert MESSAGES[missing] in result.stderr
    assert sum(message in result.stderr for message in MESSAGES.values()) == 1
    assert "the request was not recorded" in result.stderr
    assert ncii(store_url, "takedown", "list", "-f", "jsonl").stdout == ""


def test_blank_or_invalid_elements_are_refused_and_all_are_listed(store: Store) -> None:
    empty = NewTakedown(signature="  ", urls=("ftp://x", "no-host"), posts=("",))
    with store.begin() as session, pytest.raises(IncompleteRequest) as refused:
        takedowns.create_takedown(session, empty, actor="t")
    problems = refused.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "missing signature",
        "invalid URL 'ftp",
        "invalid URL 'no-host'",
        "invalid post id",
        "missing good-faith statement",
        "missing contact information",
    ]
    future = _request(utcnow() + dt.timedelta(hours=2))
    assert "is in the future" in takedowns.problems(future, now=utcnow())[0]


def test_a_request_records_its_deadline_items_and_history(store: Store, store_url: str) -> None:
    received = (utcnow() - dt.timedelta(hours=3)).replace(microsecond=0)
    result = _new(
        store_url,
        "--post",
        "post-991",
        "--hash",
        f"pdq:{hash_file(PHOTO).get('pdq').value}",  # type: ignore[union-attr]
        "--received-at",
        received.isoformat(),
        "--description",
        "photo from 2024",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["state"] == "received" and shown["overdue"] is False
    assert dt.datetime.fromisoformat(shown["received_at"]) == received
    assert dt.datetime.fromisoformat(shown["due_at"]) == received + dt.timedelta(hours=48)
    assert 44.9 < shown["hours_left"] <= 45.0
    assert shown["urls"] == ["https://img.example.com/p/1"] and shown["posts"] == ["post-991"]
    assert shown["hashes"] == [f"pdq:{hash_file(PHOTO).get('pdq').value}"]  # type: ignore[union-attr]
    assert shown["copies"] == []  # no banks yet
    request_id = str(shown["id"])

    assert ncii(store_url, "takedown", "review", request_id).exit_code == 0
    removed = ncii(store_url, "takedown", "remove", request_id, "-f", "jsonl")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["removed_in_time"] is True
    late = ncii(store_url, "takedown", "reject", request_id, "--reason", "changed mind")
    assert late.exit_code == exit_codes.USAGE
    assert f"takedown request {request_id} is removed; it cannot become rejected" in late.stderr
    assert ncii(store_url, "takedown", "reject", request_id).exit_code == exit_codes.USAGE
    unknown = ncii(store_url, "takedown", "review", "99")
    assert unknown.exit_code == exit_codes.ERROR and "no takedown request 99" in unknown.stderr

    detail = json.loads(ncii(store_url, "takedown", "show", request_id, "-f", "jsonl").stdout)
    assert [(e["from"], e["to"]) for e in detail["events"]] == [
        (None, "received"),
        ("received", "in_review"),
        ("in_review", "removed"),
    ]
    with store.read() as session:
        actions = [e.action for e in reversed(history.audit_events(session))]
    assert actions == ["takedown.receive", "takedown.in_review", "takedown.removed"]
    assert ncii(store_url, "audit", "verify").exit_code == 0


def test_state_changes_are_checked(store: Store) -> None:
    with store.begin() as session:
        made = takedowns.create_takedown(session, _request(T0), actor="t", now=T0)
        request_id = made.info.id
        with pytest.raises(InvalidArgument, match="needs a reason"):
            takedowns.advance(session, request_id, "rejected", actor="t", reason="  ")
        with pytest.raises(InvalidArgument, match="before the request was received"):
            takedowns.advance(session, request_id, "removed", actor="t", at=T0 - dt.timedelta(1))
        with pytest.raises(InvalidArgument, match="invalid state 'gone'"):
            takedowns.advance(session, request_id, "gone", actor="t")
        rejected = takedowns.advance(
            session, request_id, "rejected", actor="t", reason="not NCII", at=T0
        )
    assert rejected.info.state is TakedownState.rejected
    assert rejected.info.reject_reason == "not NCII"


def test_the_overdue_list_around_the_48_hour_boundary(store: Store, store_url: str) -> None:
    ago = {"in_time": (47, 59), "overdue": (48, 1), "fresh": (10, 0), "removed_late": (50, 0)}
    ids = {}
    with store.begin() as session:
        for name, (hours, minutes) in ago.items():
            received = T0 - dt.timedelta(hours=hours, minutes=minutes)
            made = takedowns.create_takedown(session, _request(received), actor="t", now=T0)
            ids[name] = made.info.id
        takedowns.advance(session, ids["removed_late"], "removed", actor="t", at=T0)

        def listed(now: dt.datetime, **kwargs: object) -> list[int]:
            return [t.id for t in takedowns.list_takedowns(session, now=now, **kwargs)]

        six = dt.timedelta(hours=6)
        assert listed(T0, overdue=True) == [ids["overdue"]]
        assert listed(T0, due_within=six) == [ids["in_time"]]
        assert listed(T0, overdue=True, due_within=six) == [ids["overdue"], ids["in_time"]]
        # Exactly 48 hours after receipt is still in time; a moment later it is overdue.
        due = T0 + dt.timedelta(minutes=1)
        assert ids["in_time"] not in listed(due, overdue=True)
        assert ids["in_time"] in listed(due + dt.timedelta(microseconds=1), overdue=True)
        assert len(listed(T0, state=TakedownState.removed)) == 1

    # The same through the CLI, on the real clock.
    for name, minutes in (("cli_in_time", 47 * 60 + 59), ("cli_overdue", 48 * 60 + 1)):
        received = utcnow() - dt.timedelta(minutes=minutes)
        result = _new(store_url, "--received-at", received.isoformat())
        assert result.exit_code == 0, result.output
        ids[name] = json.loads(result.stdout)["id"]

    def cli(*args: str) -> list[int]:
        result = ncii(store_url, "takedown", "list", *args, "-f", "jsonl")
        assert result.exit_code == 0, result.output
        return [json.loads(line)["id"] for line in result.stdout.splitlines()]

    overdue = cli("--overdue")
    assert ids["cli_overdue"] in overdue and ids["cli_in_time"] not in overdue
    assert ids["removed_late"] not in overdue
    assert cli("--due-within", "6h") == [ids["cli_in_time"]]
    assert cli("--due-within", "1h30m", "--overdue")[-1] == ids["cli_in_time"]
    bad = ncii(store_url, "takedown", "list", "--due-within", "soon")
    assert bad.exit_code == exit_codes.USAGE and "invalid --due-within 'soon'" in bad.stderr


def test_known_copies_in_banks_and_scan_reports_are_listed(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    assert ncii(store_url, "add", "own", str(PHOTO), str(OTHER)).exit_code == 0
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    reupload = _copy(PHOTO, uploads / "u1.jpg")
    _copy(OTHER, uploads / "u2.jpg")
    report = tmp_path / "scan.csv"
    scanned = ncii(store_url, "scan", str(uploads), "--report", str(report), "--jobs", "1")
    assert scanned.exit_code == exit_codes.MATCH, scanned.output
    own_id = json.loads(
        ncii(store_url, "entry", "list", "own", "-f", "jsonl").stdout.split("\n")[0]
    )["id"]
    # The requester hashes their own copy of the photo, at yet another quality.
    media = _copy(PHOTO, tmp_path / "requester.jpg", quality=80)
    result = _new(store_url, "--media", str(media), "--scan-report", str(report))
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    hashed = hash_file(media)
    assert shown["hashes"] == [str(s) for s in hashed.signals if s.type in ("pdq", "md5", "sha256")]
    assert [(c["source"], c["bank"], c["entry_id"], c["location"]) for c in shown["copies"]] == [
        ("bank", "own", own_id, None),
        ("scan", "own", own_id, str(reupload)),
    ]
    assert all(c["distance"] <= 31 for c in shown["copies"])
    assert "2 known copies" in result.stderr

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"GIF89a broken")
    failed = _new(store_url, "--media", str(broken))
    assert failed.exit_code == exit_codes.SOME_INPUTS_FAILED and "broken.jpg" in failed.stderr
    bad_report = tmp_path / "other.csv"
    bad_report.write_text("a,b\n1,2\n")
    refused = _new(store_url, "--media", str(media), "--scan-report", str(bad_report))
    assert refused.exit_code == exit_codes.USAGE and "not a scan report" in refused.stderr


def test_a_request_linked_to_a_case_shows_in_its_status(store_url: str, tmp_path: Path) -> None:
    opened = json.loads(ncii(store_url, "case", "open", str(PHOTO), "-f", "jsonl").stdout)
    pin = tmp_path / "pin"
    pin.write_text(opened["pin"])
    result = _new(store_url, "--case", opened["case"].lower())
    assert result.exit_code == 0, result.output
    request_id = json.loads(result.stdout)["id"]
    status = ncii(
        store_url, "case", "status", opened["case"], "--pin-file", str(pin), "-f", "jsonl"
    )
    [linked] = json.loads(status.stdout)["takedowns"]
    assert (linked["id"], linked["state"]) == (request_id, "received")
    unknown = _new(store_url, "--case", "NC-ZZZZ-ZZZZ")
    assert unknown.exit_code == exit_codes.ERROR and "no case 'NC-ZZZZ-ZZZZ'" in unknown.stderr


def test_notices_list_urls_on_the_host_and_hashes_but_no_media_or_requester(
    store_url: str, tmp_path: Path
) -> None:
    made = _new(
        store_url,
        "--url",
        "https://cdn.example.com/img/2.jpg",
        "--url",
        "https://elsewhere.org/x",
        "--post",
        "post-7",
        "--media",
        str(PHOTO),
    )
    assert made.exit_code == 0, made.output
    request_id = str(json.loads(made.stdout)["id"])
    out = tmp_path / "notices"
    result = ncii(
        store_url,
        "takedown",
        "notice",
        request_id,
        "--to",
        "example.com",
        "--from",
        "tns@platform.test",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    text_path, eml_path = (Path(line) for line in result.stdout.splitlines())
    assert text_path == out / f"takedown-{request_id}-example.com.txt"
    body = text_path.read_text()
    pdq = hash_file(PHOTO).get("pdq")
    assert pdq is not None
    for expected in (
        "https://img.example.com/p/1",
        "https://cdn.example.com/img/2.jpg",
        "post-7",
        f"pdq:{pdq.value}",
        f"sha256:{hash_file(PHOTO).get('sha256').value}",  # type: ignore[union-attr]
        "tns@platform.test",
    ):
        assert expected in body
    for absent in ("elsewhere.org", "Jane Doe", "jane@example.org", "$"):
        assert absent not in body
    message = email.message_from_bytes(eml_path.read_bytes(), policy=policy.default)
    assert message["To"] == "abuse@example.com" and message["From"] == "tns@platform.test"
    assert f"Removal request {request_id}" in message["Subject"]
    assert not message.is_multipart()  # no attachment, ever
    assert message.get_content().strip() == body.strip()

    template = tmp_path / "mine.txt"
    template.write_text("Subject: Please act on $request_id\n\nContact $contact about:\n$urls\n")
    custom = ncii(
        store_url, "takedown", "notice", request_id, "--to", "elsewhere.org",
        "--from", "tns@platform.test", "--template", str(template), "-o", str(out),
    )  # fmt: skip
    assert custom.exit_code == 0, custom.output
    written = (out / f"takedown-{request_id}-elsewhere.org.txt").read_text()
    assert written == "Contact jane@example.org about:\n  - https://elsewhere.org/x\n"
    eml = (out / f"takedown-{request_id}-elsewhere.org.eml").read_bytes()
    assert email.message_from_bytes(eml)["Subject"] == f"Please act on {request_id}"

    template.write_text("Dear $victim_name\n")
    wrong = ncii(
        store_url, "takedown", "notice", request_id, "--to", "example.com",
        "--from", "a@b.c", "--template", str(template), "-o", str(out),
    )  # fmt: skip
    assert wrong.exit_code == exit_codes.USAGE
    assert "mine.txt: unknown placeholder $victim_name" in wrong.stderr
    shown = runner.invoke(app, ["takedown", "template"])
    assert shown.exit_code == 0 and "$urls" in shown.stdout and "$hashes" in shown.stdout
