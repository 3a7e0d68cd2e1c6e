"""`ncii takedown`: record TAKE IT DOWN Act removal requests, follow their 48-hour deadline,
move them along, and write notices to hosts."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_errors, cli_store
from ncii.cli.options import (
    ActorOption,
    DbOption,
    FormatOption,
    OutputFormat,
    resolve_actor,
)
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.cli.when import parse_duration, parse_time
from ncii.errors import NciiError
from ncii.hashing import hash_many
from ncii.service import notices, takedowns
from ncii.service.matching import Matcher
from ncii.service.takedowns import NewTakedown, TakedownDetail, TakedownInfo
from ncii.signals import Signal
from ncii.store.models import TakedownState, utcnow

takedown_app = typer.Typer(
    name="takedown",
    help="TAKE IT DOWN Act removal requests: receive, track the 48-hour deadline, notify hosts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

IdArgument = Annotated[int, typer.Argument(help="The request's id.", show_default=False)]
LIST_COLUMNS = ("id", "state", "received_at", "due_at", "hours_left", "overdue", "case")
Many = list[str] | None


@takedown_app.command("new")
def new_command(
    signature: Annotated[
        str | None, typer.Option(help="The requester's physical or electronic signature.")
    ] = None,
    statement: Annotated[
        str | None,
        typer.Option(help="Their good-faith statement that the depiction is non-consensual."),
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="How to reach them: email, phone or address.")
    ] = None,
    url: Annotated[Many, typer.Option("--url", help="Where the depiction is (repeatable).")] = None,
    post: Annotated[Many, typer.Option("--post", help="A post or content id (repeatable).")] = None,
    media: Annotated[
        Many, typer.Option("--media", help="The depiction itself, hashed here (repeatable).")
    ] = None,
    hashes: Annotated[
        Many, typer.Option("--hash", help="A hash of it: TYPE:VALUE (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What it shows, briefly.")] = None,
    case: Annotated[str | None, typer.Option(help="Link to this case number.")] = None,
    received_at: Annotated[
        str | None, typer.Option(help="When it was received (ISO 8601). Default: now.")
    ] = None,
    scan_report: Annotated[
        Many,
        typer.Option("--scan-report", help="Also list copies found by this `ncii scan` report."),
    ] = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Record a removal request; every element § 223a requires must be there. Its media is
    hashed here, and copies already in the banks (or in scan reports) are listed with it.

    Example: ncii takedown new --signature "Jane Doe" --contact jane@example.org
    --statement "I did not consent to this image being published" --url https://host/p/1
    """
    try:
        signals = tuple(Signal.parse(h) for h in hashes or [])
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    hashed = []
    for outcome in hash_many(media or []):
        if outcome.hashes is None:
            error_line(f"{outcome.error}; the request was not recorded")
            raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)
        hashed.append(outcome.hashes)
    request = NewTakedown(
        signature=signature,
        statement=statement,
        contact=contact,
        urls=tuple(url or ()),
        posts=tuple(post or ()),
        signals=signals + tuple(s for h in hashed for s in takedowns.request_signals(h)),
        description=description,
        case=case,
        received_at=parse_time(received_at, "--received-at"),
    )
    missing = takedowns.problems(request, now=utcnow())
    if missing:
        for problem in missing:
            error_line(problem)
        error_line("the request was not recorded")
        raise typer.Exit(exit_codes.USAGE)
    with cli_store(db) as store:
        matcher = Matcher(store)
        copies = takedowns.find_copies(matcher, hashed, signals, scan_report or [])
        with store.begin() as session:
            detail = takedowns.create_takedown(
                session, request, actor=resolve_actor(actor), copies=copies
            )
    _show(detail, fmt)
    note_line(
        f"takedown request {detail.info.id} received "
        f"{detail.info.received_at.isoformat(timespec='minutes')}; remove by "
        f"{detail.info.due_at.isoformat(timespec='minutes')} ({len(copies)} known copies)"
    )


@takedown_app.command("list")
def list_command(
    overdue: Annotated[bool, typer.Option(help="Open requests past their deadline.")] = False,
    due_within: Annotated[
        str | None,
        typer.Option(help="Open requests due within this time, e.g. 6h (with --overdue: both)."),
    ] = None,
    state: Annotated[TakedownState | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 1_000,
    db: DbOption = None,
    fmt: FormatOption = None,
) -> None:
    """List requests by deadline, soonest first.

    Example: ncii takedown list --overdue --due-within 6h
    """
    window = parse_duration(due_within, "--due-within")
    now = utcnow()
    with cli_store(db) as store, store.read() as session:
        found = takedowns.list_takedowns(
            session, now=now, overdue=overdue, due_within=window, state=state, limit=limit
        )
    render(
        found,
        fmt=choose_format(fmt),
        columns=LIST_COLUMNS,
        flat=lambda t: _list_row(t, now),
        as_json=lambda t: t.to_dict(now),
    )


@takedown_app.command("show")
def show_command(takedown_id: IdArgument, db: DbOption = None, fmt: FormatOption = None) -> None:
    """Show a request: its elements, items, known copies and history.

    Example: ncii takedown show 12
    """
    with cli_store(db) as store, store.read() as session:
        detail = takedowns.get_takedown(session, takedown_id)
    _show(detail, fmt)


def _advance(
    takedown_id: int,
    state: TakedownState,
    *,
    reason: str | None,
    at: str | None,
    db: str | None,
    actor: str | None,
    fmt: Any,
) -> None:
    when = parse_time(at, "--at")
    with cli_store(db) as store, store.begin() as session:
        detail = takedowns.advance(
            session, takedown_id, state, actor=resolve_actor(actor), reason=reason, at=when
        )
    render(
        [detail.info],
        fmt=choose_format(fmt),
        columns=LIST_COLUMNS,
        flat=lambda t: _list_row(t, utcnow()),
        as_json=lambda t: t.to_dict(utcnow()),
    )


AtOption = Annotated[
    str | None, typer.Option("--at", help="When it happened (ISO 8601). Default: now.")
]
NoteOption = Annotated[str | None, typer.Option("--note", help="A note for the audit log.")]


@takedown_app.command("review")
def review_command(
    takedown_id: IdArgument,
    note: NoteOption = None,
    at: AtOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Mark a request in review. Example: ncii takedown review 12"""
    _advance(takedown_id, TakedownState.in_review, reason=note, at=at, db=db, actor=actor, fmt=fmt)


@takedown_app.command("remove")
def remove_command(
    takedown_id: IdArgument,
    note: NoteOption = None,
    at: AtOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Record that the depiction (and its known copies) was removed.

    Example: ncii takedown remove 12 --at 2026-06-01T14:05Z
    """
    _advance(takedown_id, TakedownState.removed, reason=note, at=at, db=db, actor=actor, fmt=fmt)


@takedown_app.command("reject")
def reject_command(
    takedown_id: IdArgument,
    reason: Annotated[str, typer.Option(help="Why the request is rejected.")],
    at: AtOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Reject a request, with a reason. Example: ncii takedown reject 12 --reason "not NCII" """
    _advance(takedown_id, TakedownState.rejected, reason=reason, at=at, db=db, actor=actor, fmt=fmt)


@takedown_app.command("notice")
def notice_command(
    takedown_id: IdArgument,
    to: Annotated[str, typer.Option("--to", help="The host or platform, e.g. example.com.")],
    sender: Annotated[
        str,
        typer.Option(
            "--from", envvar="NCII_NOTICE_FROM", help="Your reply address, e.g. tns@example.org."
        ),
    ],
    to_address: Annotated[
        str | None, typer.Option(help="Recipient address. Default: abuse@HOST.")
    ] = None,
    template: Annotated[
        Path | None, typer.Option(help="A template of your own (`ncii takedown template`).")
    ] = None,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where to write the .txt and .eml.")
    ] = Path(),
    db: DbOption = None,
) -> None:
    """Write a removal notice to a host as text and as an .eml message: the URLs on that host,
    post ids and hashes, never media.

    Example: ncii takedown notice 12 --to example.com --from tns@ourplatform.org -o notices/
    """
    text = None
    if template is not None:
        try:
            text = template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            error_line(f"{template}: cannot read ({getattr(exc, 'strerror', None) or exc})")
            raise typer.Exit(exit_codes.USAGE) from None
    with cli_store(db) as store, store.read() as session:
        detail = takedowns.get_takedown(session, takedown_id)
    with cli_errors():
        notice = notices.render_notice(
            detail,
            host=to,
            sender=sender,
            to=to_address,
            template=text,
            template_name=str(template) if template else "the template",
        )
    stem = f"takedown-{takedown_id}-{_safe(to)}"
    text_path, eml_path = output_dir / f"{stem}.txt", output_dir / f"{stem}.eml"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        text_path.write_text(notice.body, encoding="utf-8")
        eml_path.write_bytes(notice.to_eml())
    except OSError as exc:
        error_line(f"{output_dir}: cannot write the notice ({exc.strerror or exc})")
        raise typer.Exit(exit_codes.ERROR) from None
    typer.echo(str(text_path))
    typer.echo(str(eml_path))
    note_line(f"notice for request {takedown_id} to {notice.to}: {notice.subject}")


@takedown_app.command("template")
def template_command() -> None:
    """Print the default notice template, to copy and edit (then pass --template).

    Example: ncii takedown template > notice.txt
    """
    typer.echo(notices.default_template(), nl=False)


def _safe(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", host.strip()) or "host"


def _list_row(takedown: TakedownInfo, now: dt.datetime) -> dict[str, Any]:
    row = takedown.to_dict(now)
    for key in ("received_at", "due_at"):
        row[key] = getattr(takedown, key).isoformat(timespec="minutes")
    return row


def _show(detail: TakedownDetail, fmt: Any) -> None:
    now = utcnow()
    output = choose_format(fmt)
    if output is OutputFormat.jsonl:
        render([detail], fmt=output, columns=(), flat=lambda d: d.to_dict(now))
        return
    data = detail.to_dict(now)
    rows: list[tuple[str, Any]] = [
        (k, v) for k, v in data.items() if not isinstance(v, list) and v is not None
    ]
    rows += [("url", u) for u in detail.urls] + [("post", p) for p in detail.posts]
    rows += [("hash", str(s)) for s in detail.signals]
    rows += [
        ("copy", " ".join(f"{k}={v}" for k, v in c.to_dict().items() if v is not None))
        for c in detail.copies
    ]
    rows += [
        ("event", f"{e['at']} {e['from'] or '-'} -> {e['to']} by {e['actor']}")
        for e in detail.events
    ]
    render(
        rows,
        fmt=output,
        columns=("field", "value"),
        flat=lambda row: {"field": row[0], "value": row[1]},
        title=f"takedown request {detail.info.id}",
    )
