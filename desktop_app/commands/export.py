"""`pixfind export`: turn an open_clip model or checkpoint into a model pack."""

from __future__ import annotations

from pathlib import Path

import click

from ..pack import PRECISIONS
from ._common import console, import_training


def precision_option(default: str = "fp32"):
    return click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default=default,
        show_default=True,
        help="fp32; fp16 for GPUs; int8 (dynamic quantisation) for fast CPU search.",
    )


@click.command("export")
@click.option("--arch", required=True, help="open_clip architecture (e.g. ViT-L-14-336) or a model config .json.")
@click.option("--pretrained", help="open_clip pretrained tag, downloaded through open_clip (needs network).")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Full state dict (.pth/.pt/.safetensors), e.g. the authors' MCIP checkpoint or one our trainer wrote.",
)
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    help="Hugging Face tokenizer directory or tokenizer.json, for models whose tokenizer open_clip does not ship (SigLIP).",
)
@precision_option()
@click.option(
    "--text-precision",
    type=click.Choice(PRECISIONS),
    help="The text tower's precision, when it differs from --precision's: int8 (block-wise weights) makes each "
    "query faster while the photos' embeddings keep --precision's. Default: the same as --precision.",
)
@click.option("--name", help="Name of the pack (default: derived from the architecture and weights).")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), help="Write the pack here instead of installing it.")
@click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
def export_command(arch, pretrained, checkpoint, tokenizer, precision, text_precision, name, output, replace):
    """Export an open_clip model or checkpoint as a verified model pack."""
    if not pretrained and not checkpoint:
        raise click.UsageError("give --pretrained TAG or --checkpoint FILE")
    import_training("export").export_and_install(
        arch,
        pretrained=pretrained,
        checkpoint=checkpoint,
        tokenizer=tokenizer,
        precision=precision,
        text_precision=text_precision,
        name=name,
        output=output,
        replace=replace,
        log=lambda msg: console.print(msg, markup=False, highlight=False, soft_wrap=True),
    )


COMMANDS = [export_command]
