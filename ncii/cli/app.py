"""The `ncii` typer application and its error boundary."""

from __future__ import annotations

import typer

from ncii import __version__
from ncii.cli import exit_codes
from ncii.cli.hash_cmd import hash_command
from ncii.cli.output import error_line
from ncii.errors import NciiError

app = typer.Typer(
    name="ncii",
    help="Hash, bank and match non-consensual intimate imagery without ever storing it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("hash")(hash_command)


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
