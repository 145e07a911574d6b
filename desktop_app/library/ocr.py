"""Reading the text in a photo: PP-OCR detection and recognition through rapidocr.

The ``rapidocr`` wheel ships the PP-OCRv6 small detection and recognition models as ONNX
files (Chinese and English in one recognition model, its character list inside the graph)
and runs them on the ONNX Runtime the app already has; it depends on no onnxruntime
package of its own, so the app's onnxruntime-gpu (or onnxruntime on macOS) stays the only
runtime. The models are named by path, so rapidocr never looks for them online, and it
is handed decoded pixels only (it would fetch a string that looks like a URL).

Recognition runs only on the regions the detector found. rapidocr is imported on the
first photo read, never by a library with OCR switched off.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PixfindError

if TYPE_CHECKING:  # NumPy and Pillow load when a photo is read: a quiet `pixfind index` needs neither
    import numpy as np
    from PIL import Image

DETECTION_MODEL = "PP-OCRv6_det_small.onnx"
RECOGNITION_MODEL = "PP-OCRv6_rec_small.onnx"
ORIENTATION_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"  # never run (photos are upright): named so nothing is fetched

# The long side photos are read at. Text a person can read on a phone screen showing the whole
# photo stays at least ~10 px high here; benchmarks/ocr_quality.py measures recall and speed.
MAX_SIDE = 1600
# Lines recognised with less confidence are mostly texture read as letters (rapidocr's default).
MIN_CONFIDENCE = 0.5

MISSING = "reading text in photos needs the 'rapidocr' package (pip install rapidocr)"


@dataclass(frozen=True)
class TextLine:
    text: str
    box: tuple[tuple[float, float], ...]  # four corners (x, y), fractions of the upright photo's width and height
    confidence: float

    def box_json(self) -> str:
        return json.dumps([[round(x, 4), round(y, 4)] for x, y in self.box], separators=(",", ":"))

    @staticmethod
    def box_from_json(value: str) -> tuple[tuple[float, float], ...]:
        return tuple((float(x), float(y)) for x, y in json.loads(value))


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("rapidocr")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_version() -> str:
    """The OCR model version recorded with every photo read; a different one reads them again.
    Known without loading anything; PixfindError when rapidocr is not installed."""
    try:
        version = importlib.metadata.version("rapidocr")
    except importlib.metadata.PackageNotFoundError:
        raise PixfindError(MISSING) from None
    return f"rapidocr-{version}/{DETECTION_MODEL[:-5]}+{RECOGNITION_MODEL[:-5]}"


def ocr_image(path: str) -> Image.Image:
    """The photo upright, its long side at most MAX_SIDE: the OCR pass's own bounded decode
    (JPEGs decode at a reduced scale in draft mode). The embedding's decode is too small to
    read text from (the model input plus a 256-px thumbnail)."""
    from PIL import Image

    from .decode import open_upright

    image = open_upright(path, draft_size=MAX_SIDE * 3 // 4)
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return image


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


class OcrEngine:
    """rapidocr with the bundled models, loaded on the first read. Use from one thread at a time."""

    def __init__(self, providers: Sequence[str] | None = None):
        self._providers = list(providers) if providers else None
        self._ocr = None
        self.version = model_version()

    def _load(self):
        if self._ocr is not None:
            return self._ocr
        models = _package_dir()
        if models is None:
            raise PixfindError(MISSING)
        models = models / "models"
        for name in (DETECTION_MODEL, RECOGNITION_MODEL):
            if not (models / name).is_file():
                raise PixfindError(f"{models / name}: the OCR model is missing; reinstall rapidocr")
        from ..encoder import CUDA, default_providers

        providers = self._providers or default_providers()
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise PixfindError(f"{MISSING}: {e}") from None
        self._ocr = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Global.text_score": MIN_CONFIDENCE,
                "Det.model_path": str(models / DETECTION_MODEL),
                "Rec.model_path": str(models / RECOGNITION_MODEL),
                "Cls.model_path": str(models / ORIENTATION_MODEL),
                "EngineConfig.onnxruntime.use_cuda": providers[0] == CUDA,
                # every photo has its own input size: an exhaustive search per size costs more than it saves
                "EngineConfig.onnxruntime.cuda_ep_cfg.cudnn_conv_algo_search": "HEURISTIC",
            }
        )
        return self._ocr

    def read(self, image: Image.Image | np.ndarray) -> list[TextLine]:
        """The lines of text in an upright RGB image (Pillow, or an [H, W, 3] uint8 RGB array)."""
        import numpy as np
        from PIL import Image

        rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an [H, W, 3] uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        if min(height, width) < 2:
            return []
        result = self._load()(np.ascontiguousarray(rgb[..., ::-1]))  # rapidocr takes arrays as BGR
        if getattr(result, "txts", None) is None or result.boxes is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes, result.txts, result.scores):
            text = _clean(text)
            if not text or score < MIN_CONFIDENCE:
                continue
            corners = tuple(
                (min(max(float(x) / width, 0.0), 1.0), min(max(float(y) / height, 0.0), 1.0)) for x, y in box[:4]
            )
            lines.append(TextLine(text, corners, float(score)))
        return lines
