"""`pixfind train ...` and `pixfind eval`: the training module behind lazy imports (the app has no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from ..pack import PRECISIONS
from ._common import console, import_training

TASKS = {"gpr-ft": "run_gpr_ft", "mcip": "run_mcip", "realign": "run_realign"}


def _config(task: str, config: str | None, overrides: tuple[str, ...]):
    cfg_mod = import_training("config", "train")
    path = None
    if config:
        path = Path(config) if Path(config).is_file() or config.endswith((".yaml", ".yml")) else cfg_mod.find_shipped_config(config)
    return cfg_mod.load_config(task, path, overrides)


def _log(msg: str) -> None:
    console.print(msg)


def _train_command(task: str, help_text: str) -> click.Command:
    @click.command(task, help=help_text + "\n\nOVERRIDES are dotted settings, e.g. optim.lr=1e-5 train.epochs=1.")
    @click.option("--config", "-c", help="YAML config file, or the name of a shipped config (see model_training/configs).")
    @click.option("--export", "export", is_flag=True, help="Afterwards, export the best model as a pack and install it in the app.")
    @click.option("--export-name", help="Name of the exported pack.")
    @click.option("--export-output", type=click.Path(path_type=Path, file_okay=False), help="Write the pack here instead of installing it.")
    @click.option("--export-precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
    @click.option("--export-text-precision", type=click.Choice(PRECISIONS),
                  help="The exported text tower's precision (default: the same as --export-precision).")
    @click.option("--export-tokenizer", type=click.Path(path_type=Path, exists=True),
                  help="tokenizer.json or folder, for models whose tokenizer open_clip does not ship (SigLIP).")
    @click.option("--replace", is_flag=True, help="Replace an installed pack of the same name.")
    @click.option("--fresh", is_flag=True,
                  help="Start the run over: move the output folder's last.pt aside (to last.pt.old) instead of resuming from it.")
    @click.argument("overrides", nargs=-1)
    def command(config, export, export_name, export_output, export_precision, export_text_precision, export_tokenizer, replace,
                fresh, overrides):
        cfg = _config(task, config, overrides)
        pipelines = import_training("pipelines", "train")
        export_opts = ({"name": export_name, "output": export_output, "precision": export_precision,
                        "text_precision": export_text_precision, "replace": replace, "tokenizer": export_tokenizer}
                       if export or export_output else None)
        getattr(pipelines, TASKS[task])(cfg, export=export_opts, log=_log, fresh=fresh)

    return command


@click.group("train")
def train_group() -> None:
    """Fine-tune CLIP models for retrieval (GPR-FT, MCIP, realignment); needs the 'train' extra."""


train_group.add_command(_train_command("gpr-ft", "Stage 1: fine-tune the image tower with ArcFace over class proxies."))
train_group.add_command(_train_command("mcip", "MCIP: ArcFace plus the multi-caption loss on retrieved pseudo-captions."))
train_group.add_command(_train_command("realign", "Stage 2: re-align the text tower to a locked image tower on cached features."))


@train_group.command("pseudo-captions")
@click.option("--config", "-c", help="YAML config file, or the name of a shipped config.")
@click.argument("overrides", nargs=-1)
def pseudo_captions_command(config, overrides):
    """Retrieve up to top_k corpus captions per training image (cosine above a threshold), as JSONL.

    Resumable: run it again after an interruption and it continues where it stopped.
    """
    cfg = _config("pseudo-captions", config, overrides)
    import_training("pipelines", "train").run_pseudo_captions(cfg, log=_log)


@click.command("eval")
@click.option("--arch", help="open_clip architecture or model-config .json (with --pretrained or --checkpoint).")
@click.option("--pretrained", help="open_clip pretrained tag.")
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), help="A full open_clip state dict.")
@click.option("--pack", type=click.Path(path_type=Path), help="An exported model pack (directory): scores what the app runs.")
@click.option("--gpr1200", type=click.Path(path_type=Path, exists=True), help="GPR1200.zip or its images folder.")
@click.option("--folder", type=click.Path(path_type=Path, exists=True, file_okay=False), help="ImageFolder: all-vs-all mAP.")
@click.option("--instre", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="INSTRE root: all-vs-all mAP, each leaf folder a class.")
@click.option("--cub", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="CUB_200_2011 (or its images folder): Recall@1 on test classes 101-200.")
@click.option("--revisited", type=click.Path(path_type=Path, exists=True, file_okay=False), multiple=True,
              help="ROxford5k / RParis6k root (gnd_*.pkl + jpg/): Medium and Hard mAP. Repeatable.")
@click.option("--knn-train", type=click.Path(path_type=Path, exists=True, file_okay=False), help="ImageFolder gallery for k-NN.")
@click.option("--knn-val", type=click.Path(path_type=Path, exists=True, file_okay=False), help="ImageFolder queries for k-NN.")
@click.option("--zero-shot", type=click.Path(path_type=Path, exists=True, file_okay=False), help="ImageFolder named by class.")
@click.option("--captions", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="path,caption manifest: T2I recall.")
@click.option("--captions-root", type=click.Path(path_type=Path, exists=True, file_okay=False), help="Base folder of the manifest's paths.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the metrics as JSON.")
def eval_command(arch, pretrained, checkpoint, pack, gpr1200, folder, instre, cub, revisited, knn_train, knn_val,
                 zero_shot, captions, captions_root, device, json_out):
    """Score a model: GPR1200 / INSTRE / all-vs-all mAP, CUB R@1, ROxford/RParis, k-NN (k=21), zero-shot, T2I R@K."""
    if bool(pack) == bool(arch):
        raise click.UsageError("give either --pack DIR or --arch (with --pretrained or --checkpoint)")
    if knn_val and not knn_train:
        raise click.UsageError("--knn-val needs --knn-train (the gallery)")
    evaluate = import_training("evaluation.run", "train")
    results = evaluate.evaluate(arch=arch, pretrained=pretrained, checkpoint=checkpoint, pack=pack, device=device,
                                sets={"gpr1200": gpr1200, "folder": folder, "instre": instre, "cub": cub,
                                      "revisited": revisited, "knn_train": knn_train, "knn_val": knn_val,
                                      "zero_shot": zero_shot, "captions": captions, "captions_root": captions_root})
    for name, value in results.items():
        console.print(f"{name:>16}: {100 * value:6.2f}")
    if json_out:
        import json

        json_out.write_text(json.dumps(results, indent=2))


COMMANDS = [train_group, eval_command]
