"""The `pixfind` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .commands import LazyGroup
from .errors import Cancelled, PixfindError
from .text import printable


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pixfind")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Find photos on your own disk by describing them or by example."""
    global _invoked
    _invoked = ctx.invoked_subcommand
    if ctx.invoked_subcommand is None:
        from .commands.app import open_window

        ctx.exit(open_window())


# Subcommands are imported when used (commands.LazyGroup): a command pays only for its own imports.

# Commands whose process ends without the interpreter's teardown once they have answered (``run``):
# by then they hold nothing open (``index`` has closed its library: every write committed, the
# catalogue's connections closed), and tearing down ONNX Runtime's session and a few hundred
# modules costs a cold `pixfind search` about 0.3 s, a quarter of its time, and `pixfind index` 0.2 s.
QUICK_EXIT_COMMANDS = {"search", "index"}
_invoked: str | None = None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a user error becomes one line on stderr and exit status 1, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="pixfind", standalone_mode=False)
    except Cancelled as e:
        click.echo(f"pixfind: interrupted: {printable(str(e))}", err=True)
        return 130
    except PixfindError as e:
        click.echo(f"pixfind: error: {printable(str(e))}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("pixfind: interrupted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("pixfind: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script: ``main``, then exit with its status."""
    code = main()
    if _invoked in QUICK_EXIT_COMMANDS:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (`pixfind search ... | head -1`): nothing more can be written anyway
            pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
