"""`pixfind desktop install` / `pixfind desktop uninstall`: pixfind in the applications menu, with its icon
and a "Find similar in pixfind" action on images in the file manager."""

from __future__ import annotations

import click

from ..text import printable

WHERE = {
    "freedesktop": "the applications menu (with its icon, and \"Find similar in pixfind\" in Nautilus and Dolphin)",
    "macos": "~/Applications",
    "windows": "the Start menu",
}


def _print_caches(report) -> None:
    if report.cache_problems:
        click.echo("could not refresh the desktop's caches (the menu may update at the next login): " + "; ".join(report.cache_problems))


@click.group("desktop")
def desktop() -> None:
    """Add pixfind to the desktop's applications menu, or take it away."""


@desktop.command("install")
def install_command() -> None:
    """Add pixfind to the applications menu with its icon; images get "Find similar in pixfind"."""
    from ..desktop_integration.install import install

    report = install()
    changed = len(report.written) + len(report.removed)
    state = f"{len(report.written)} files written" if changed else "already installed, nothing changed"
    click.echo(f"pixfind added to {WHERE[report.platform]}: {state}")
    _print_caches(report)


@desktop.command("uninstall")
def uninstall_command() -> None:
    """Take away everything `pixfind desktop install` wrote (files changed since are kept)."""
    from ..desktop_integration.install import manifest_path, uninstall

    report = uninstall()
    if not report.removed and not report.kept:
        click.echo(f"nothing to remove: no desktop install recorded in {printable(manifest_path())}")
        return
    click.echo(f"pixfind removed from {WHERE[report.platform]}: {len(report.removed)} files removed")
    for path in report.kept:
        click.echo(f"kept {printable(path)}: changed since `pixfind desktop install` wrote it")
    _print_caches(report)


COMMANDS = [desktop]
