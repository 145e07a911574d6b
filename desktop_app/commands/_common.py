"""Helpers shared by the subcommands: output, the library and model options, Ctrl-C."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

import click
from rich.console import Console

from ..services.training import import_training  # noqa: F401 - re-exported for the export and train commands
from ..text import human_size, printable  # noqa: F401 - re-exported for the commands

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def library_option(f):
    return click.option(
        "--library",
        "library_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Library folder (default: the per-user data folder).",
    )(f)


def model_option(f):
    return click.option("--model", "model_name", default=None, help="Model pack to use (default: the active model).")(f)


@contextmanager
def ctrl_c_cancels():
    """Yields an Event that the first Ctrl-C sets, so a long operation stops cleanly at its next
    step; a second Ctrl-C interrupts at once. Outside the main thread, nothing is installed."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def on_sigint(signum, frame):
        cancel.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.getsignal(signal.SIGINT) or signal.default_int_handler
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)
