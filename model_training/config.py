"""Run configuration: typed task defaults <- a YAML file <- dotted command-line overrides (``optim.lr=1e-5``).

Each task's settings are a tree of frozen dataclasses, one per section. A YAML file and each
override are checked against that tree (unknown keys, mappings where values belong, ``${...}``
interpolations) and merged into it by OmegaConf, which converts and type-checks the values.
Configs are untrusted input: every problem is one line naming the file (or the override) and
the dotted key.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from desktop_app.errors import PixfindError, one_line


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-6`` as a string; learning rates are written that way, so read it as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$|^[-+]?\d+[eE][-+]?\d+$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _at_least(low: int, default: int):
    return field(default=default, metadata={"min": low})


def _one_of(default: str, *choices: str):
    return field(default=default, metadata={"choices": (default, *choices)})


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ModelSettings:
    arch: str | None = None  # open_clip architecture or a model-config .json
    pretrained: str | None = None
    checkpoint: str | None = None
    grad_checkpointing: bool = False
    patch_dropout: float = 0.0


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = _at_least(1, 3)
    max_steps: int | None = None
    grad_clip: float | None = 1.0
    precision: str = _one_of("bf16", "fp32")
    log_every: int = _at_least(1, 50)
    eval_every: int = _at_least(0, 0)  # steps; 0 = at the end of each epoch
    patience: int = _at_least(0, 50)  # evaluations without gain; 0 = never stop early
    checkpoint_every: int = _at_least(0, 1000)
    seed: int = 0
    output_dir: str = "runs/run"
    device: str = "auto"
    progress: bool = True  # progress bars, when stderr is a terminal


@dataclass(frozen=True)
class OptimSettings:
    lr: float = 1e-6
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = _at_least(0, 0)
    min_lr: float = 1e-7
    proxy_lr_mult: float = 100.0  # learning-rate multiplier of the ArcFace class proxies


@dataclass(frozen=True)
class EvalSettings:
    folder: str | None = None
    gpr1200: str | None = None
    instre: str | None = None
    cub: str | None = None
    revisited: list[str] = field(default_factory=list)
    knn_train: str | None = None
    knn_val: str | None = None
    zero_shot: str | None = None
    captions: str | None = None
    captions_root: str | None = None
    metric: str = "i2i_map"
    batch_size: int = _at_least(1, 128)


@dataclass(frozen=True)
class AugmentSettings:
    resize_ratio: float = 1.125
    hflip: bool = True
    color_jitter: float = 0.4


class _Entry:
    def spec(self) -> dict:
        """The entry as the data readers take it: only the keys that are set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class LabelledSet(_Entry):
    """One labelled data set: ``{imagefolder: DIR}`` or ``{manifest: FILE, root: DIR}``."""

    imagefolder: str | None = None
    manifest: str | None = None
    root: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CaptionSet(_Entry):
    """Image-caption pairs: ``{manifest: FILE, root: DIR}`` or ``{webdataset: PATTERN}``."""

    manifest: str | None = None
    root: str | None = None
    webdataset: str | None = None


@dataclass(frozen=True)
class LabelledData:
    train: list[LabelledSet] = field(default_factory=list)
    batch_size: int = _at_least(1, 128)
    workers: int = _at_least(0, 4)
    augment: AugmentSettings = field(default_factory=AugmentSettings)


@dataclass(frozen=True)
class MCIPData(LabelledData):
    pseudo_captions: list[str] = field(default_factory=list)  # JSONL files of `pixfind train pseudo-captions`


@dataclass(frozen=True)
class CaptionData:
    captions: list[CaptionSet] = field(default_factory=list)
    batch_size: int = _at_least(1, 16384)
    workers: int = _at_least(0, 4)
    feature_cache: str | None = None
    feature_batch_size: int = _at_least(1, 256)


@dataclass(frozen=True)
class PseudoCaptionData:
    images: list[LabelledSet] = field(default_factory=list)
    corpus: str | None = None
    output: str | None = None
    corpus_cache: str | None = None
    batch_size: int = _at_least(1, 256)
    workers: int = _at_least(0, 4)


@dataclass(frozen=True)
class ArcFaceSettings:
    scale: float = 30.0
    margin: float = 0.1


@dataclass(frozen=True)
class MCIPLossSettings(ArcFaceSettings):
    class_weight: float = 0.75
    caption_weight: float = 0.25
    hard_weight: float = 0.1


@dataclass(frozen=True)
class ContrastiveLossSettings:
    type: str = _one_of("auto", "clip", "siglip")  # auto: sigmoid when the model has a logit bias


@dataclass(frozen=True)
class RealignSettings:
    unlocked_text_tensors: int = _at_least(0, 16)


@dataclass(frozen=True)
class RetrievalSettings:
    top_k: int = _at_least(1, 20)
    threshold: float = 0.27


@dataclass(frozen=True)
class DeviceSettings:
    device: str = "auto"
    progress: bool = True


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class GPRFTConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    data: LabelledData = field(default_factory=LabelledData)
    loss: ArcFaceSettings = field(default_factory=ArcFaceSettings)


@dataclass(frozen=True)
class MCIPConfig(GPRFTConfig):
    data: MCIPData = field(default_factory=MCIPData)
    loss: MCIPLossSettings = field(default_factory=MCIPLossSettings)


@dataclass(frozen=True)
class RealignConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=lambda: TrainSettings(epochs=1, patience=0))
    optim: OptimSettings = field(
        default_factory=lambda: OptimSettings(lr=1e-5, weight_decay=0.2, betas=[0.9, 0.98], eps=1e-6, min_lr=0.0)
    )
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(metric="t2i_r5"))
    data: CaptionData = field(default_factory=CaptionData)
    loss: ContrastiveLossSettings = field(default_factory=ContrastiveLossSettings)
    realign: RealignSettings = field(default_factory=RealignSettings)


@dataclass(frozen=True)
class PseudoCaptionsConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    data: PseudoCaptionData = field(default_factory=PseudoCaptionData)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    train: DeviceSettings = field(default_factory=DeviceSettings)


TASKS: dict[str, type] = {
    "gpr-ft": GPRFTConfig,
    "mcip": MCIPConfig,
    "realign": RealignConfig,
    "pseudo-captions": PseudoCaptionsConfig,
}
TrainingConfig = GPRFTConfig | MCIPConfig | RealignConfig | PseudoCaptionsConfig


# ----------------------------------------------------------------------------- loading


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> {"a": {"b": {"c": value}}}; the value is read as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise PixfindError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    keys = path.strip().split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out


def load_config(task: str, path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainingConfig:
    """The settings of ``task``: its defaults, then the YAML file ``path``, then each override in turn."""
    if task not in TASKS:
        raise PixfindError(f"unknown task {task!r} (choose {', '.join(TASKS)})")
    schema = TASKS[task]
    node = OmegaConf.structured(schema)
    if path is not None:
        node = _merge(node, schema, _read(Path(path)), str(path))
    for text in overrides:
        node = _merge(node, schema, parse_override(text), f"override {text!r}")
    cfg = OmegaConf.to_object(node)
    if not cfg.model.arch:
        raise PixfindError("no model: set model.arch (and model.pretrained or model.checkpoint)")
    return cfg


def to_dict(cfg: TrainingConfig) -> dict:
    """Plain nested dicts and lists, e.g. to write next to a run."""
    return dataclasses.asdict(cfg)


def find_shipped_config(name: str) -> Path:
    """A config shipped in model_training/configs, by file name with or without .yaml."""
    folder = Path(__file__).parent / "configs"
    candidate = folder / (name if name.endswith(".yaml") else name + ".yaml")
    if not candidate.is_file():
        shipped = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise PixfindError(f"{name}: no such config file or shipped config (shipped: {shipped})")
    return candidate


def _read(path: Path) -> dict:
    if not path.is_file():
        raise PixfindError(f"{path}: config file not found")
    try:
        loaded = _yaml(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise PixfindError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise PixfindError(f"{path}: a config must be a mapping of sections")
    loaded.pop("task", None)  # names the command the file is for; the command already chose
    return loaded


def _merge(node, schema: type, data: dict, source: str):
    _check_shape(schema, data, "", source)
    try:
        node = OmegaConf.merge(node, data)
        _check_limits(OmegaConf.to_object(node), "", source)
    except OmegaConfBaseException as e:
        where = f"{e.full_key}: " if e.full_key else ""
        raise PixfindError(f"{source}: {where}{one_line(str(e.msg or e).splitlines()[0])}") from None
    return node


def _check_shape(schema: type, data: Any, where: str, source: str) -> None:
    """Every key known, mappings and lists where the schema has them, no interpolation."""
    if not isinstance(data, dict):
        raise PixfindError(f"{source}: {where or 'the config'} must be a mapping of settings")
    hints = typing.get_type_hints(schema)
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in hints:
            raise PixfindError(f"{source}: unknown setting {path} (known here: {', '.join(sorted(hints))})")
        _check_value(hints[key], value, path, source)


def _check_value(hint, value: Any, path: str, source: str) -> None:
    if value is None and dataclasses.is_dataclass(hint):
        raise PixfindError(f"{source}: section {path} is empty; give it settings or leave it out")
    if value is None:
        return  # OmegaConf refuses None where a value is required, naming the key
    if dataclasses.is_dataclass(hint):
        _check_shape(hint, value, path, source)
    elif typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise PixfindError(f"{source}: {path} must be a list")
        (item,) = typing.get_args(hint)
        for i, v in enumerate(value):
            _check_value(item, v, f"{path}[{i}]", source)
    elif isinstance(value, (dict, list)):
        raise PixfindError(f"{source}: {path} must be a single value, not a {type(value).__name__}")
    elif isinstance(value, str) and "${" in value:
        # OmegaConf would resolve it (e.g. ${oc.env:NAME} reads the environment): a config is data only.
        raise PixfindError(f"{source}: {path}: ${{...}} interpolations are not allowed")


def _check_limits(cfg, where: str, source: str) -> None:
    for f in dataclasses.fields(cfg):
        value, path = getattr(cfg, f.name), f"{where}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_limits(value, path + ".", source)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    _check_limits(item, f"{path}[{i}].", source)
        elif "choices" in f.metadata and value not in f.metadata["choices"]:
            raise PixfindError(f"{source}: {path} is {value!r}; choose {', '.join(f.metadata['choices'])}")
        elif "min" in f.metadata and value < f.metadata["min"]:
            raise PixfindError(f"{source}: {path} is {value}; it must be at least {f.metadata['min']}")
