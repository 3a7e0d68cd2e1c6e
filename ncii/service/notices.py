"""Takedown notices to a host or platform: text and an .eml message, from an editable template.

The template is plain text with ``$placeholders`` (:data:`PLACEHOLDERS`); a first line
``Subject: …`` becomes the message's subject. The default one (``ncii/templates/
takedown_notice.txt``, printed by ``ncii takedown template``) lists the URLs on that host, post
ids and hashes, and nothing about the requester: their signature and contact are available as
placeholders for a template that needs them. No media is ever attached.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from importlib import resources
from string import Template
from urllib.parse import urlsplit

from ncii.errors import InvalidArgument
from ncii.service.takedowns import TakedownDetail

PLACEHOLDERS = (
    "request_id",
    "host",
    "received_at",
    "due_at",
    "urls",
    "posts",
    "hashes",
    "description",
    "sender",
    "date",
    "signature",
    "contact",
)
NONE = "  (none)"


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str
    to: str
    sender: str

    def to_eml(self, *, now: dt.datetime | None = None) -> bytes:
        message = EmailMessage()
        message["Subject"] = self.subject
        message["From"] = self.sender
        message["To"] = self.to
        message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(self.body)
        return message.as_bytes()


def default_template() -> str:
    return resources.files("ncii").joinpath("templates/takedown_notice.txt").read_text("utf-8")


def urls_on(urls: tuple[str, ...], host: str) -> tuple[str, ...]:
    """The URLs on ``host`` or its subdomains; all of them when none are (a host named by
    something other than its domain)."""
    host = host.lower().strip(".")
    mine = tuple(
        u
        for u in urls
        if (name := (urlsplit(u).hostname or "").lower()) == host or name.endswith("." + host)
    )
    return mine or urls


def render_notice(
    takedown: TakedownDetail,
    *,
    host: str,
    sender: str,
    to: str | None = None,
    template: str | None = None,
    template_name: str = "the template",
    now: dt.datetime | None = None,
) -> Notice:
    """Fill the template for one host. Unknown placeholders are refused, naming them."""
    host = host.strip()
    if not host:
        raise InvalidArgument("the notice needs a host (--to)")
    info = takedown.info
    values = {
        "request_id": str(info.id),
        "host": host,
        "received_at": _when(info.received_at),
        "due_at": _when(info.due_at),
        "urls": _lines(urls_on(takedown.urls, host)),
        "posts": _lines(takedown.posts),
        "hashes": _lines(tuple(str(s) for s in takedown.signals)),
        "description": takedown.description or "",
        "sender": sender,
        "date": _when(now or dt.datetime.now(dt.UTC)),
        "signature": takedown.signature,
        "contact": takedown.contact,
    }
    try:
        text = Template(template if template is not None else default_template()).substitute(values)
    except KeyError as exc:
        known = ", ".join(f"${p}" for p in PLACEHOLDERS)
        raise InvalidArgument(
            f"{template_name}: unknown placeholder ${exc.args[0]} (known: {known})"
        ) from None
    except ValueError as exc:
        raise InvalidArgument(f"{template_name}: {exc} (write $$ for a dollar sign)") from None
    subject = f"Removal request {info.id} (47 U.S.C. 223a)"
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        subject, text = first.split(":", 1)[1].strip(), rest.lstrip("\n")
    return Notice(subject=subject, body=text, to=to or f"abuse@{host}", sender=sender)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines(values: tuple[str, ...]) -> str:
    return "\n".join(f"  - {v}" for v in values) if values else NONE
