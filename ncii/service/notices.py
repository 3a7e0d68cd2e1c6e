"""Takedown notices to a host or platform: text and an .eml message, from an editable template.

The template is plain text with ``$placeholders`` (:data:`PLACEHOLDERS`); a first line
``Subject: …`` becomes the message's subject. The default one (``ncii/templates/
takedown_notice.txt``, printed by ``ncii takedown template``) lists the URLs on that host, post
ids and hashes, and nothing about the requester: their signature and contact are available as
placeholders for a template that needs them. No media is ever attached.
"""

from __future__ import annotations

import datetime as dt
import re
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
    """The URLs on ``host`` or its subdomains, and no others: a notice never tells a host
    about locations elsewhere."""
    host = host.lower().strip(".")
    return tuple(
        u
        for u in urls
        if (name := (urlsplit(u).hostname or "").lower()) == host or name.endswith("." + host)
    )


HEADER_FIELDS = {"--to": "host", "--from": "sender", "--to-address": "to"}


def _check_header_fields(**values: str | None) -> None:
    """The recipient, sender and address become mail headers and file names: a line break or
    other control character in one is refused before anything is written."""
    for option, name in HEADER_FIELDS.items():
        value = values.get(name)
        if value is not None and CONTROL.search(value):
            raise InvalidArgument(f"{option} contains a line break or control character; refused")


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
    """Fill the template for one host. Unknown placeholders are refused, naming them, and so
    is a host none of the request's URLs is on (the notice would send it someone else's)."""
    _check_header_fields(host=host, sender=sender, to=to)
    host = host.strip()
    if not host:
        raise InvalidArgument("the notice needs a host (--to)")
    info = takedown.info
    mine = urls_on(takedown.urls, host)
    if takedown.urls and not mine:
        hosts = sorted({urlsplit(u).hostname or u for u in takedown.urls})
        raise InvalidArgument(
            f"request {info.id} lists no URL on {host} (its URLs are on {', '.join(hosts)}); "
            "a notice goes to the host of the locations it lists"
        )
    values = {
        "request_id": str(info.id),
        "host": host,
        "received_at": _when(info.received_at),
        "due_at": _when(info.due_at),
        "urls": _lines(mine),
        "posts": _lines(takedown.posts),
        "hashes": _lines(tuple(str(s) for s in takedown.signals)),
        "description": _plain(takedown.description or ""),
        "sender": sender,
        "date": _when(now or dt.datetime.now(dt.UTC)),
        "signature": _plain(takedown.signature),
        "contact": _plain(takedown.contact),
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


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _plain(text: str) -> str:
    """Stored free text with any control character (an escape sequence, say, stored before
    they were refused) shown as ``\\xNN`` instead of acting on the reader's terminal."""
    return _TEXT_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines(values: tuple[str, ...]) -> str:
    return "\n".join(f"  - {v}" for v in values) if values else NONE
