"""`pixfind train ...` behind the CLI: a config becomes data sets, a task module and a run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import open_clip

from desktop_app.errors import PixfindError
from desktop_app.progress import progress_bar

from .config import GPRFTConfig, LabelledSet, MCIPConfig, PseudoCaptionsConfig, RealignConfig, to_dict
from .data import sources
from .data.datasets import ImageDataset, collate
from .data.shards import expand_urls, index_shards, shard_captions
from .data.transforms import train_transform
from .distributed import DistInfo, barrier, cleanup, init_distributed
from .evaluation.embedders import TorchEmbedder
from .evaluation.suite import EvalSets
from .feature_cache import CachedPairs, build_feature_cache, build_text_feature_cache, pair_collate
from .open_clip_models import build_model, eval_transform
from .pseudo_captions import dedupe, write_pseudo_captions
from .runs import fit, save_clip
from .tasks import CaptionBank, GPRFineTune, MCIPFineTune, Realign, set_patch_dropout
from .trainer.loop import FitResult, LoopConfig, set_aside_resume


def _model(cfg, dist: DistInfo):
    m = cfg.model
    loaded = build_model(m.arch, pretrained=m.pretrained, checkpoint=Path(m.checkpoint) if m.checkpoint else None)
    clip = loaded.model
    if m.grad_checkpointing:
        clip.set_grad_checkpointing(True)
    set_patch_dropout(clip, m.patch_dropout or 0.0)
    return loaded, clip.to(dist.device), open_clip.get_tokenizer(loaded.arch)


def _model_identity(loaded) -> dict:
    """What a cache of this model's embeddings depends on."""
    return {"arch": loaded.arch, "pretrained": loaded.pretrained,
            "checkpoint": str(loaded.checkpoint.resolve()) if loaded.checkpoint else None,
            "mtime": loaded.checkpoint.stat().st_mtime if loaded.checkpoint else None}


def _loop(cfg: GPRFTConfig | RealignConfig) -> LoopConfig:
    t = cfg.train
    return LoopConfig(epochs=t.epochs, max_steps=t.max_steps, grad_clip=t.grad_clip, precision=t.precision,
                      log_every=t.log_every, eval_every=t.eval_every, patience=t.patience,
                      checkpoint_every=t.checkpoint_every, num_workers=cfg.data.workers, progress=t.progress)


def _labelled(entries: list[LabelledSet], setting: str) -> sources.LabelledListing:
    if not entries:
        raise PixfindError(f"no training data: set {setting} to a list of {{imagefolder: DIR}} or {{manifest: FILE}} entries")
    names = [e.name or f"set{k}" for k, e in enumerate(entries)]
    return sources.mix_labelled([sources.labelled_source(e.spec()) for e in entries], names if len(entries) > 1 else None)


def _optim(cfg: GPRFTConfig | RealignConfig, proxies: bool) -> dict:
    o = asdict(cfg.optim)
    mult = o.pop("proxy_lr_mult")
    o["lr_multipliers"] = {"loss.": mult} if proxies else {}
    return o


def _evaluator(cfg: GPRFTConfig | RealignConfig, clip, tokenizer, dist: DistInfo) -> tuple[Callable[[], dict] | None, str | None]:
    sets = EvalSets.from_config(asdict(cfg.eval))
    if sets.empty:
        return None, None
    metric = cfg.eval.metric
    if metric not in sets.metric_names:
        raise PixfindError(f"eval.metric {metric!r} is not produced by the configured eval sets ({', '.join(sets.metric_names)})")
    embedder = TorchEmbedder(clip, tokenizer, device=dist.device, batch_size=cfg.eval.batch_size)
    return (lambda: sets.evaluate(embedder)), metric


def _finish(result: FitResult, task: str, cfg: GPRFTConfig | RealignConfig, export: dict | None,
            log: Callable[[str], None], dist: DistInfo) -> Path:
    best = result.best_path
    log(f"done after {result.steps} steps" + (f"; best {cfg.eval.metric} = {result.best_metric:.4f}"
                                            if result.best_metric is not None else "") + f"; model: {best}")
    if export is not None and dist.is_main:
        from .export import export_and_install

        m = cfg.model
        base = m.pretrained or (Path(m.checkpoint).name if m.checkpoint else None)
        export_and_install(str(m.arch), pretrained=None, checkpoint=best, tokenizer=export.get("tokenizer"),
                           precision=export.get("precision", "fp32"), text_precision=export.get("text_precision"),
                           name=export.get("name"), output=export.get("output"),
                           replace=export.get("replace", False), source_extra={"training": {"method": task, "base": base}},
                           log=log)
    return best


def _start_fresh(out: Path, dist: DistInfo, log: Callable[[str], None]) -> None:
    """--fresh: move the run folder's checkpoint aside, so that the run starts over instead of resuming."""
    if dist.is_main:
        moved = set_aside_resume(out)
        if moved is not None:
            log(f"starting over: the run's checkpoint was moved aside to {moved}")
    barrier()


def _out(task: str, cfg: GPRFTConfig | RealignConfig) -> tuple[Path, dict]:
    """The run's folder, with the settings it ran with as config.json (loadable again as a config)."""
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"task": task, **to_dict(cfg)}
    (out / "config.json").write_text(json.dumps(settings, indent=2, default=str))
    return out, settings


def _show(enabled: bool) -> bool | None:
    """train.progress: bars when stderr is a terminal (None), or never."""
    return None if enabled else False


def run_gpr_ft(cfg: GPRFTConfig, export: dict | None = None, log: Callable[[str], None] = print,
               fresh: bool = False) -> Path:
    return _run_finetune("gpr-ft", cfg, export, log, fresh)


def run_mcip(cfg: MCIPConfig, export: dict | None = None, log: Callable[[str], None] = print,
             fresh: bool = False) -> Path:
    return _run_finetune("mcip", cfg, export, log, fresh)


def _pseudo_caption_lists(files: list, paths: list[Path]) -> list[list[str]]:
    """Captions per training image, matched by resolved path; images absent from every file get none."""
    if not files:
        raise PixfindError("MCIP needs data.pseudo_captions: the JSONL files `pixfind train pseudo-captions` writes")
    table: dict[str, list[str]] = {}
    for f in files:
        for row in _jsonl(Path(f)):
            table[str(Path(row["path"]).resolve())] = list(row.get("captions", []))
    out = [table.get(str(Path(p).resolve()), []) for p in paths]
    if not any(out):
        raise PixfindError(f"{files[0]}: none of its paths match the training images")
    return out


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _run_finetune(task: str, cfg: GPRFTConfig, export, log, fresh: bool = False) -> Path:
    dist = init_distributed(cfg.train.device)
    try:
        out, settings = _out(task, cfg)
        if fresh:
            _start_fresh(out, dist, log)
        _, clip, tokenizer = _model(cfg, dist)
        listing = _labelled(cfg.data.train, "data.train")
        dim = clip.visual.output_dim
        loss = cfg.loss
        captions = None
        if task == "mcip":
            per_image = _pseudo_caption_lists(cfg.data.pseudo_captions, listing.paths)
            unique = sorted({c for caps in per_image for c in caps})
            index = {c: i for i, c in enumerate(unique)}
            captions = [[index[c] for c in caps] for caps in per_image]
            log(f"encoding {len(unique)} distinct pseudo-captions with the frozen text tower")
            bank = CaptionBank.encode(clip, tokenizer, unique, device=dist.device)
            module = MCIPFineTune(clip, len(listing.classes), dim, bank, loss.scale, loss.margin,
                                  loss.class_weight, loss.caption_weight, loss.hard_weight)
        else:
            module = GPRFineTune(clip, len(listing.classes), dim, loss.scale, loss.margin)
        aug = cfg.data.augment
        data = ImageDataset(listing.paths, train_transform(clip, aug.resize_ratio, aug.hflip, aug.color_jitter),
                            labels=listing.labels, captions=captions)
        log(f"{len(data)} images in {len(listing.classes)} classes; output {out}")
        evaluate, select = _evaluator(cfg, clip, tokenizer, dist)
        result = fit(module, data, collate, out_dir=out, batch_size=cfg.data.batch_size, optim=_optim(cfg, True),
                     loop=_loop(cfg), dist=dist, save_model=save_clip(clip), seed=cfg.train.seed,
                     evaluate=evaluate, select=select, log_extra={"config": settings})
        return _finish(result, task, cfg, export, log, dist)
    finally:
        cleanup()


def caption_listing(entries: list[dict]) -> tuple[list, list[list[str]]]:
    """Image-caption pairs from manifests ({manifest: FILE, root: DIR}) and shards ({webdataset: PATTERN})."""
    images, captions = [], []
    for e in entries:
        if "webdataset" in e:
            imgs, caps = shard_captions(index_shards(expand_urls(e["webdataset"])))
        elif "manifest" in e:
            listing = sources.caption_manifest(Path(e["manifest"]), e.get("root"))
            imgs, caps = listing.paths, listing.captions
        else:
            raise PixfindError(f"caption data entry {e!r}: expected 'manifest' or 'webdataset'")
        images += imgs
        captions += caps
    if not images:
        raise PixfindError("no caption data: set data.captions to a list of {manifest: FILE} or {webdataset: PATTERN}")
    return images, captions


def run_realign(cfg: RealignConfig, export: dict | None = None, log: Callable[[str], None] = print,
                fresh: bool = False) -> Path:
    dist = init_distributed(cfg.train.device)
    try:
        out, settings = _out("realign", cfg)
        if fresh:
            _start_fresh(out, dist, log)
        loaded, clip, tokenizer = _model(cfg, dist)
        images, captions = caption_listing([e.spec() for e in cfg.data.captions])
        cache_dir = Path(cfg.data.feature_cache or out / "features")
        fingerprint = json.dumps(_model_identity(loaded))
        if dist.is_main:
            log(f"caching image embeddings of {len(images)} images in {cache_dir}")
            with progress_bar("image features", enabled=_show(cfg.train.progress)) as progress:
                build_feature_cache(clip, ImageDataset(images, eval_transform(clip)), cache_dir, fingerprint=fingerprint,
                                    batch_size=cfg.data.feature_batch_size, device=dist.device,
                                    num_workers=cfg.data.workers, progress=progress)
        barrier()
        from .feature_cache import load_feature_cache

        pairs = CachedPairs(load_feature_cache(cache_dir), captions)
        module = Realign(clip, cfg.realign.unlocked_text_tensors, cfg.loss.type)
        log(f"{len(pairs)} image-caption pairs; unlocked text tensors: {', '.join(module.unlocked) or 'none'}")
        evaluate, select = _evaluator(cfg, clip, tokenizer, dist)
        loop = _loop(cfg)
        loop.num_workers = 0  # cached features: nothing to decode
        result = fit(module, pairs, pair_collate(tokenizer), out_dir=out, batch_size=cfg.data.batch_size,
                     optim=_optim(cfg, False), loop=loop, dist=dist, save_model=save_clip(clip),
                     seed=cfg.train.seed, evaluate=evaluate, select=select, log_extra={"config": settings})
        return _finish(result, "realign", cfg, export, log, dist)
    finally:
        cleanup()


def read_corpus(path: Path) -> list[str]:
    """Captions, one per line (.txt), or the 'caption' field of .jsonl/.csv rows; de-duplicated."""
    path = Path(path)
    if not path.is_file():
        raise PixfindError(f"{path}: caption corpus not found")
    if path.suffix == ".txt":
        return dedupe(path.read_text(encoding="utf-8").splitlines())
    rows = sources._rows(path)
    if rows and "caption" not in rows[0]:
        raise PixfindError(f"{path}: corpus rows need a 'caption' field")
    return dedupe([r["caption"] for r in rows])


def run_pseudo_captions(cfg: PseudoCaptionsConfig, log: Callable[[str], None] = print) -> Path:
    dist = init_distributed(cfg.train.device)
    loaded, clip, tokenizer = _model(cfg, dist)
    d = cfg.data
    if not d.corpus or not d.output:
        raise PixfindError("set data.corpus (caption file) and data.output (JSONL to write)")
    listing = _labelled(d.images, "data.images")
    corpus_path, output = Path(d.corpus), Path(d.output)
    corpus = read_corpus(corpus_path)
    log(f"{len(corpus)} distinct captions, {len(listing.paths)} images")
    embedder = TorchEmbedder(clip, tokenizer, device=dist.device, batch_size=d.batch_size)
    # the corpus embeddings are the long part at CC12M scale: cached in chunks beside the output, resumable
    cache_dir = Path(d.corpus_cache or output.with_name(output.name + ".corpus-features"))
    fingerprint = json.dumps({"model": _model_identity(loaded), "corpus": str(corpus_path.resolve()),
                              "corpus_size": corpus_path.stat().st_size, "corpus_mtime": corpus_path.stat().st_mtime})
    show = _show(cfg.train.progress)
    with progress_bar("corpus", unit="caption", enabled=show) as progress:
        corpus_features = build_text_feature_cache(embedder.encode_texts, corpus, cache_dir, fingerprint=fingerprint,
                                                   progress=progress)
    r = cfg.retrieval
    with progress_bar("pseudo-captions", enabled=show) as progress:
        out = write_pseudo_captions(output, [str(Path(p).resolve()) for p in listing.paths], embedder.encode_images,
                                    corpus, corpus_features, top_k=r.top_k, threshold=r.threshold, progress=progress)
    log(f"wrote {out}")
    return out
