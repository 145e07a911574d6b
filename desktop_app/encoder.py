"""The encoder runtime: a model pack run by ONNX Runtime, with no torch.

Each tower's ONNX session is opened when it is first needed (``lazy=True``, what the app uses):
a text search never loads the image tower, indexing never loads the text tower, and `status`
or a re-index with nothing new loads neither. Before a session is used its file is checked
again (a file changed since the pack was opened is hashed against pack.json) and its graph's
shapes are checked against pack.json. NumPy, Pillow, tokenizers and onnxruntime are imported
only when something is encoded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PackError, one_line
from .pack import TEXTUAL_FILE, VISUAL_FILE, PackManifest, load_pack, pack_member, sha256_file

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# ONNX Runtime's telemetry writes a device id and an event database under the user's cache folder
# (~/.cache/Microsoft/DeveloperTools/.onnxruntime), outside PIXFIND_HOME; it reads this variable
# once, when the library loads, so it must be set before the first import.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _ort():
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        try:
            disable()
        except Exception:  # noqa: BLE001 - telemetry is best-effort either way
            pass
    return onnxruntime


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build and machine can use it, else CPU.

    ``PIXFIND_PROVIDERS`` (comma-separated provider names) overrides the choice.
    """
    override = os.environ.get("PIXFIND_PROVIDERS")
    if override:
        return [p.strip() for p in override.split(",") if p.strip()]
    available = _ort().get_available_providers()
    return [CUDA, CPU] if CUDA in available and _cuda_device_present() else [CPU]


def _cuda_device_present() -> bool:
    # onnxruntime-gpu lists the CUDA provider even on machines without a GPU; asking
    # for it there only produces a noisy failure, so look for the driver first.
    return Path("/proc/driver/nvidia").exists() or os.name == "nt" and bool(os.environ.get("CUDA_PATH"))


def _open_session(path: Path, providers: Sequence[str], threads: int | None, precision: str):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallback warnings are expected
    if precision == "fp16" and providers[0] == CPU:
        # ONNX Runtime's CPU layout optimisations (level ALL) crash the process on fp16 ViT graphs
        # (seen with onnxruntime 1.31); EXTENDED keeps every fusion but those.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for corrupt models
        raise PackError(f"{path}: ONNX Runtime cannot load it ({one_line(e)})") from None


def _output_dim(session, path: Path) -> int | None:
    shape = session.get_outputs()[0].shape
    return shape[-1] if shape and isinstance(shape[-1], int) else None


def _fixed(dim) -> int | None:
    """A declared dimension as an int, or None when it is symbolic ("batch") or unknown."""
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def check_graph(session, path: Path, expected_input: Sequence[int | None], what: str, manifest_path: Path) -> None:
    """Refuse a graph whose declared input or output shape disagrees with pack.json.

    ``expected_input`` is the input shape pack.json implies (None where any size will do, as
    for the batch); symbolic dimensions in the graph are accepted wherever they appear.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise PackError(
            f"{path}: has {len(inputs)} inputs and {len(outputs)} outputs; a pack's {what} encoder takes one input"
        )
    shape = inputs[0].shape
    if shape is not None and len(shape) != len(expected_input):
        raise PackError(
            f"{path}: takes a rank-{len(shape)} input {list(shape)}, not the [{', '.join('N' if d is None else str(d) for d in expected_input)}] "
            f"that {manifest_path.name} describes"
        )
    for axis, (declared, wanted) in enumerate(zip(shape or [], expected_input)):
        declared = _fixed(declared)
        if declared is not None and wanted is not None and declared != wanted:
            raise PackError(
                f"{path}: input {inputs[0].name!r} has size {declared} on axis {axis} but {manifest_path} "
                f"implies {wanted} ({list(shape)} vs [{', '.join('N' if d is None else str(d) for d in expected_input)}]); "
                "pack.json does not describe this model"
            )
    out_shape = outputs[0].shape
    if out_shape is not None and len(out_shape) != 2:
        raise PackError(f"{path}: its output has shape {list(out_shape)}, not [N, embedding_dim]")


IMAGE, TEXT = "image", "text"

# A debugging aid: with PIXFIND_DEBUG_SESSIONS set, each session opened is named on stderr
# ("pixfind: debug: opened the image session of <pack>"), so a test or a user can see what
# a command loads.
DEBUG_SESSIONS_ENV = "PIXFIND_DEBUG_SESSIONS"


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Encoder:
    """Embeds images and texts into one L2-normalised space with a model pack."""

    def __init__(
        self,
        pack_dir: Path | str,
        providers: Sequence[str] | None = None,
        *,
        verify: bool | None = True,
        threads: int | None = None,
        lazy: bool = False,
    ):
        """``verify``: True hashes every file against pack.json; False trusts files whose size and
        mtime match the record made when they were last verified (an installed pack) and hashes the
        others; None checks no file (the caller has just verified them).

        ``lazy``: False opens (and checks) both sessions now, so a pack that cannot run fails here
        (installing, verifying, building a pack); True opens each on its first use (the app)."""
        self.pack_dir = Path(pack_dir)
        self.manifest: PackManifest = load_pack(self.pack_dir, verify=verify)
        self._providers = list(providers) if providers else None
        self._visual_path = self.pack_dir / VISUAL_FILE
        self._textual_path = self.pack_dir / TEXTUAL_FILE
        # The files as they were just checked: a session opened later re-checks a file that changed.
        self._checked = {VISUAL_FILE: _stat(self._visual_path), TEXTUAL_FILE: _stat(self._textual_path)}
        self._threads = threads
        self._visual = None
        self._textual = None
        self._preprocessor = None
        self._tokenizer = None
        self._tokenizer_path = pack_member(self.pack_dir, self.manifest.text.tokenizer_file)
        self._opening = threading.Lock()
        if not lazy:
            # Open both sessions now: a damaged or mismatched pack must fail at load, not mid-search.
            self.load(image=True, text=True)

    # ------------------------------------------------------------------ loading

    @property
    def providers(self) -> list[str]:
        if self._providers is None:
            self._providers = default_providers()
        return self._providers

    @providers.setter
    def providers(self, value: Sequence[str]) -> None:
        self._providers = list(value)

    def load(self, image: bool = True, text: bool = True) -> Encoder:
        """Open (and check) the named towers' sessions now rather than on first use."""
        if image:
            _ = self.visual_session
        if text:
            _ = self.textual_session
        return self

    def loaded_sessions(self) -> set[str]:
        """Which towers have an open session: a subset of {"image", "text"}."""
        return {name for name, s in ((IMAGE, self._visual), (TEXT, self._textual)) if s is not None}

    @property
    def visual_session(self):
        if self._visual is None:
            with self._opening:
                if self._visual is None:
                    height, width = self.manifest.image.size
                    self._visual = self._open_checked(self._visual_path, VISUAL_FILE, (None, 3, height, width), IMAGE)
        return self._visual

    @property
    def textual_session(self):
        if self._textual is None:
            with self._opening:
                if self._textual is None:
                    expected = (None, self.manifest.text.context_length)
                    self._textual = self._open_checked(self._textual_path, TEXTUAL_FILE, expected, TEXT)
        return self._textual

    def _open_checked(self, path: Path, name: str, expected_input, what: str):
        self._recheck(path, name)
        session = self._session(path)
        check_graph(session, path, expected_input, what, self.pack_dir / "pack.json")
        if os.environ.get(DEBUG_SESSIONS_ENV):
            import sys

            print(f"pixfind: debug: opened the {what} session of {self.manifest.name}", file=sys.stderr, flush=True)
        return session

    def _recheck(self, path: Path, name: str) -> None:
        """A tower file that changed since the pack was opened is hashed and must match pack.json."""
        now = _stat(path)
        if now is None:
            raise PackError(f"{path}: missing from the model pack")
        if now == self._checked.get(name):
            return
        expected = self.manifest.files.get(name)
        try:
            actual = sha256_file(path)
        except OSError as e:
            raise PackError(f"{path}: unreadable ({e.strerror or e})") from None
        if expected is not None and actual != expected:
            raise PackError(
                f"{path}: changed since the pack was opened (sha256 {actual[:12]}… is not {expected[:12]}… "
                "as pack.json says); the pack is damaged or was tampered with: reinstall it"
            )
        self._checked[name] = now

    @property
    def preprocessor(self):
        if self._preprocessor is None:
            from .preprocess import ImagePreprocessor

            self._preprocessor = ImagePreprocessor(self.manifest.image)
        return self._preprocessor

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .text_tokenizer import TextTokenizer

            self._tokenizer = TextTokenizer(self._tokenizer_path, self.manifest.text)
        return self._tokenizer

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def active_provider(self) -> str:
        """The provider running the image tower (the text tower's when only it is open); opening
        no session to answer: with none open, the first provider asked for."""
        session = self._visual or self._textual
        return session.get_providers()[0] if session is not None else self.providers[0]

    def _session(self, path: Path):
        session = _open_session(path, self.providers, self._threads, self.manifest.precision)
        dim = _output_dim(session, path)
        if dim is not None and dim != self.manifest.embedding_dim:
            raise PackError(
                f"{path}: produces {dim}-d embeddings but pack.json says {self.manifest.embedding_dim}; "
                "the pack mixes files of different models"
            )
        return session

    # ------------------------------------------------------------------ encoding

    def encode_images(self, images: Iterable[Image.Image | str | Path], batch_size: int = 32) -> np.ndarray:
        """Embed images given as PIL images or file paths; returns float32 [N, D]."""
        from PIL import Image

        from .preprocess import load_image

        loaded = [img if isinstance(img, Image.Image) else load_image(Path(img)) for img in images]
        if not loaded:
            return self._empty()
        return self._run_batched(self.visual_session, loaded, self.preprocessor, batch_size)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embed images already preprocessed to float32 [N, 3, H, W]."""
        return self._run(self.visual_session, pixels)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed texts; returns float32 [N, D]."""
        texts = list(texts)
        if not texts:
            return self._empty()
        return self._run_batched(self.textual_session, texts, self.tokenizer.encode, batch_size)

    def _empty(self) -> np.ndarray:
        import numpy as np

        return np.zeros((0, self.dim), dtype=np.float32)

    def _run_batched(self, session, items: list, prepare, batch_size: int) -> np.ndarray:
        import numpy as np

        if not items:
            return self._empty()
        out = [self._run(session, prepare(items[i : i + batch_size])) for i in range(0, len(items), batch_size)]
        return np.concatenate(out, axis=0)

    def _run(self, session, inputs: np.ndarray) -> np.ndarray:
        import numpy as np

        feed = {session.get_inputs()[0].name: inputs}
        (embedding,) = session.run(None, feed)
        return np.ascontiguousarray(embedding, dtype=np.float32)
