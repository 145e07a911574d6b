"""`pixfind folders list` and `pixfind folders remove PATH`: the library's folders."""

from __future__ import annotations

import json

import click

from ._common import library_option, printable
from .library import json_path, open_service


@click.group("folders")
def folders() -> None:
    """The folders of the library: list them, or forget one."""


@folders.command("list")
@click.option("--json", "as_json", is_flag=True)
@library_option
def list_folders(as_json, library_dir) -> None:
    """Each folder with its photo count; a folder not found on disk keeps its photos."""
    with open_service(library_dir, model=False) as service:
        found = service.folders()
    if as_json:
        click.echo(json.dumps([{"path": json_path(f.path), "photos": f.photos, "present": f.present} for f in found]))
        return
    if not found:
        click.echo("the library has no folders yet: run `pixfind index FOLDER`")
    for f in found:
        click.echo(f"{printable(f.path)}: {f.photos} photos" + ("" if f.present else " (folder not found)"))


@folders.command("remove")
@click.argument("path", type=click.Path(file_okay=False))
@library_option
def remove_folder(path, library_dir) -> None:
    """Forget the folder PATH and its photos; the files themselves stay on disk."""
    with open_service(library_dir, model=False) as service:
        forgotten = service.remove_folder(path)
    click.echo(f"removed {printable(path)} from the library: {forgotten} photo{'' if forgotten == 1 else 's'} forgotten, no file deleted")


COMMANDS = [folders]
