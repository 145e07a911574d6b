"""`pixfind library check` and `pixfind library repair`: find damage in a library and salvage it."""

from __future__ import annotations

import click

from .. import paths
from ..errors import PixfindError
from .library import library_option, printable


@click.group("library")
def library_group():
    """Check a library for damage, or repair a damaged one."""


def _directory(library_dir):
    return library_dir or paths.default_library_dir()


@library_group.command("check")
@library_option
def check_command(library_dir):
    """SQLite's integrity check, the catalogue's consistency, and each vector index's checksum."""
    from ..library.repair import check

    report = check(_directory(library_dir))
    click.echo(f"catalogue: {printable(str(report.catalogue))}")
    for note in report.notes:
        click.echo(f"  {note}")
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    if not report.ok:
        raise PixfindError(
            f"{printable(str(report.catalogue))}: {len(report.problems)} problems found; "
            "run `pixfind library repair` to salvage the catalogue and rebuild the vector index"
        )
    click.echo("no problems found")


@library_group.command("repair")
@library_option
def repair_command(library_dir):
    """Back up the catalogue, salvage its readable rows into a fresh one, rebuild the vector index."""
    from ..library.repair import repair

    report = repair(_directory(library_dir))
    click.echo(f"damaged catalogue kept as {printable(str(report.backup))}")
    for table, n in report.salvaged.items():
        extra = []
        if report.dropped.get(table):
            extra.append(f"{report.dropped[table]} refused")
        if report.unreadable.get(table):
            extra.append(f"{report.unreadable[table]} unreadable regions skipped")
        click.echo(f"  {table}: {n} rows salvaged" + (f" ({', '.join(extra)})" if extra else ""))
    if report.bad_vectors:
        click.echo(f"  {report.bad_vectors} damaged vectors dropped")
    click.echo(
        f"{report.to_reindex} photos must be re-indexed on the next `pixfind index`"
        + (", plus any photo whose catalogue row was unreadable (found again when its folder is scanned)"
           if report.unreadable.get("photos") or not report.salvaged.get("photos") else "")
    )
    for folder in report.folders_rebuilt:
        click.echo(f"folder rebuilt from its photos' paths: {printable(folder)}")
    if report.folders_rebuilt:
        click.echo("check them with `pixfind folders list`; a folder whose photos all sat in sub-folders is rebuilt as the deepest one")
    if report.unreadable.get("folders") and not report.folders_rebuilt or not report.salvaged.get("folders") and not report.folders_rebuilt:
        click.echo("some folders may be lost: add them again with `pixfind index FOLDER`")


COMMANDS = [library_group]
