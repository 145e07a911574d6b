"""Procedurally drawn objects with the paper's problem built in.

Every image shows one object. Its caption names its colour and shape and the scene's size and
background ("a small red circle on a dark background") but never its fill pattern; its fine identity
class is (colour, shape, pattern), so classes that share captions differ only in the pattern. A CLIP
trained on the captions has no reason to separate the patterns; a retrieval fine-tune on the fine
classes must, and has no reason to keep size and background, which vary inside every class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLOURS = {
    "red": (220, 30, 30), "orange": (240, 140, 20), "yellow": (235, 220, 40), "green": (40, 170, 60),
    "cyan": (40, 200, 210), "blue": (40, 70, 220), "purple": (140, 50, 190), "pink": (245, 120, 190),
}
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PATTERNS = ("solid", "horizontal stripes", "vertical stripes", "checkerboard", "dots", "outline")
SIZES = {"small": (0.22, 0.29), "large": (0.33, 0.40)}  # object radius / image size
BACKGROUNDS = {"dark": (55, 95), "light": (165, 205)}  # grey level
CAPTION_TEMPLATES = (
    "a {z} {c} {s} on a {b} background", "a photo of a {z} {c} {s} on a {b} background.",
    "a drawing of a {z} {c} {s}, {b} background", "an image of a {z} {c} {s} against a {b} background",
    "a {b} background with a {z} {c} {s}", "the {z} {c} {s} on {b} grey", "a picture of a {z} {c} {s} on {b}.",
    "{z} {c} {s}, {b} background",
)
# More phrasings, never used for training captions: the corpus pseudo-captions are retrieved from
# must not simply be the training set's own captions.
CORPUS_TEMPLATES = CAPTION_TEMPLATES + (
    "a close-up photo of a {z} {c} {s} on a {b} background.", "a rendering of a {z} {c} {s} on {b}.",
    "a {z} {c} {s} icon on a {b} background", "a simple {z} {c} {s} over a {b} background",
    "clip art: {z} {c} {s}, {b} backdrop", "a {b} scene with one {z} {c} {s}", "a {z} {s} that is {c}, on {b}",
    "one {z} {c} {s} in front of a {b} background",
)


@dataclass(frozen=True)
class FineClass:
    colour: str
    shape: str
    pattern: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape} with {self.pattern}"

    @property
    def caption_class(self) -> str:
        return f"{self.colour} {self.shape}"


def all_classes() -> list[FineClass]:
    return [FineClass(c, s, p) for c in COLOURS for s in SHAPES for p in PATTERNS]


def split_classes(seed: int, num_val_pairs: int, num_test_pairs: int) -> tuple[list[FineClass], list[FineClass], list[FineClass]]:
    """Disjoint train / validation / test fine classes, split by colour-shape pair.

    Held-out sets take every pattern of their pairs, so each of their captions is shared by several
    visually distinct classes: the situation in which CLIP's image embeddings fail at I2I.
    """
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    order = [pairs[i] for i in np.random.default_rng(seed).permutation(len(pairs))]
    def expand(chosen):
        return [FineClass(c, s, p) for c, s in chosen for p in PATTERNS]
    val, test = order[:num_val_pairs], order[num_val_pairs:num_val_pairs + num_test_pairs]
    return expand(order[num_val_pairs + num_test_pairs:]), expand(val), expand(test)


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return x**2 + y**2 <= r**2
    if shape == "square":
        return (np.abs(x) <= r * 0.85) & (np.abs(y) <= r * 0.85)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= r * 1.15
    if shape == "triangle":
        return (y <= r * 0.8) & (y >= -r + 2 * np.abs(x) * 0.95)
    if shape == "cross":
        return ((np.abs(x) <= r * 0.38) | (np.abs(y) <= r * 0.38)) & (np.abs(x) <= r) & (np.abs(y) <= r)
    raise ValueError(shape)


def _pattern_mask(pattern: str, x: np.ndarray, y: np.ndarray, inside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """True where the object shows its full colour; False where it shows the dark variant."""
    period = rng.uniform(3.5, 4.5)
    phase = rng.uniform(0, period)
    if pattern == "solid":
        return np.ones_like(inside)
    if pattern == "horizontal stripes":
        return ((y + phase) % period) < period / 2
    if pattern == "vertical stripes":
        return ((x + phase) % period) < period / 2
    if pattern == "checkerboard":
        return (((x + phase) // (period / 2)) + ((y + phase) // (period / 2))) % 2 == 0
    if pattern == "dots":
        return ((x + phase) % period - period / 2) ** 2 + ((y + phase) % period - period / 2) ** 2 > (period * 0.3) ** 2
    if pattern == "outline":
        # a hollow object: only a rim of full colour (the interior erodes away)
        eroded = inside[1:-1, 1:-1] & inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
        eroded = np.pad(eroded, 1)
        eroded2 = eroded[1:-1, 1:-1] & eroded[:-2, 1:-1] & eroded[2:, 1:-1] & eroded[1:-1, :-2] & eroded[1:-1, 2:]
        return ~np.pad(eroded2, 1)
    raise ValueError(pattern)


@dataclass(frozen=True)
class Scene:
    size: str
    background: str


def draw(cls: FineClass, rng: np.random.Generator, size: int = 32, scene: Scene | None = None) -> np.ndarray:
    """One uint8 HxWx3 image of ``cls`` in ``scene`` (random when None), with random position, exact
    size and grey level within the scene's range, colour jitter and noise."""
    scene = scene or random_scene(rng)
    grid = np.arange(size, dtype=np.float32) + 0.5
    cx, cy = rng.uniform(size * 0.4, size * 0.6, 2)
    r = rng.uniform(*SIZES[scene.size]) * size
    x, y = np.meshgrid(grid - cx, grid - cy)
    inside = _shape_mask(cls.shape, x, y, r)
    full = _pattern_mask(cls.pattern, x, y, inside, rng) & inside
    background = rng.uniform(*BACKGROUNDS[scene.background]) + rng.normal(0, 6, 3)
    img = np.broadcast_to(background, (size, size, 3)).astype(np.float32).copy()
    colour = np.asarray(COLOURS[cls.colour], np.float32) + rng.normal(0, 10, 3)
    dark = colour * 0.35 if cls.pattern != "outline" else background
    img[inside] = dark
    img[full] = colour
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def random_scene(rng: np.random.Generator) -> Scene:
    return Scene(list(SIZES)[rng.integers(len(SIZES))], list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))])


def describe(cls: FineClass, scene: Scene, template: str) -> str:
    return template.format(z=scene.size, c=cls.colour, s=cls.shape, b=scene.background)


def caption_for(cls: FineClass, scene: Scene, rng: np.random.Generator) -> str:
    return describe(cls, scene, CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))])


def all_scenes() -> list[Scene]:
    return [Scene(z, b) for z in SIZES for b in BACKGROUNDS]


def caption_corpus() -> list[str]:
    """The text corpus pseudo-captions are retrieved from: every phrasing of every object in every scene."""
    return sorted({describe(FineClass(c, s, ""), scene, t) for t in CORPUS_TEMPLATES for c in COLOURS for s in SHAPES
                   for scene in all_scenes()})


@dataclass
class SyntheticSet:
    images: np.ndarray  # uint8 [N, H, W, 3]
    labels: np.ndarray  # int64 [N], index into classes
    captions: list[str]
    classes: list[FineClass]
    scenes: list[Scene]

    def caption_class_of(self, i: int) -> str:
        return self.classes[self.labels[i]].caption_class

    def describable(self, i: int) -> tuple[str, str, str, str]:
        """What a caption can say about image i: (size, colour, shape, background)."""
        cls, scene = self.classes[self.labels[i]], self.scenes[i]
        return scene.size, cls.colour, cls.shape, scene.background


def make_set(classes: list[FineClass], per_class: int, seed: int, size: int = 32) -> SyntheticSet:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes)), per_class)
    scenes = [random_scene(rng) for _ in labels]
    images = np.stack([draw(classes[k], rng, size, scene) for k, scene in zip(labels, scenes)])
    captions = [caption_for(classes[k], scene, rng) for k, scene in zip(labels, scenes)]
    return SyntheticSet(images, labels.astype(np.int64), captions, classes, scenes)


def write_image_folder(data: SyntheticSet, root: Path, captions_file: str | None = "captions.jsonl") -> Path:
    """The set as an ImageFolder (one folder per class) plus an optional JSONL of path,caption."""
    from PIL import Image

    root = Path(root)
    rows = []
    for i, (img, label) in enumerate(zip(data.images, data.labels)):
        folder = root / data.classes[label].name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.png"
        Image.fromarray(img).save(path)
        rows.append({"path": str(path.relative_to(root)), "caption": data.captions[i], "label": data.classes[label].name})
    if captions_file:
        with open(root / captions_file, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return root
