"""The `ncii` typer application and its error boundary."""

from __future__ import annotations

import typer

from ncii import __version__
from ncii.cli import exit_codes
from ncii.cli.audit_cmd import audit_app
from ncii.cli.bank_cmd import bank_app
from ncii.cli.case_cmd import case_app
from ncii.cli.db_cmd import db_app
from ncii.cli.entry_cmd import entry_app
from ncii.cli.eval_cmd import eval_command
from ncii.cli.hash_cmd import hash_command
from ncii.cli.match_cmd import match_command, scan_command
from ncii.cli.output import error_line
from ncii.cli.report_cmd import report_command
from ncii.cli.takedown_cmd import takedown_app
from ncii.cli.transfer_cmd import add_command, export_command, import_command
from ncii.errors import NciiError

app = typer.Typer(
    name="ncii",
    help="Hash, bank and match non-consensual intimate imagery without ever storing it.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("hash")(hash_command)
app.command("match")(match_command)
app.command("scan")(scan_command)
app.command("add")(add_command)
app.command("import")(import_command)
app.command("export")(export_command)
app.command("eval")(eval_command)
app.add_typer(bank_app)
app.add_typer(entry_app)
app.add_typer(db_app)
app.add_typer(case_app)
app.add_typer(takedown_app)
app.add_typer(audit_app)
app.command("report")(report_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ncii {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """ncii: perceptual hashing, hash banks and matching for NCII takedown."""


def main() -> None:
    """Console entry point: library errors become one line on stderr and a non-zero exit."""
    try:
        app()
    except NciiError as exc:
        error_line(str(exc))
        raise SystemExit(exit_codes.ERROR) from None
    except KeyboardInterrupt:
        error_line("interrupted")
        raise SystemExit(130) from None
