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
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PackError, one_line
from .pack import (
    GRAPH_CONTEXT_LENGTH_KEY,
    TEXTUAL_FILE,
    VISUAL_FILE,
    PackManifest,
    check_external_data,
    load_pack,
    pack_member,
    sha256_file,
)

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


def _open_session(
    path: Path,
    providers: Sequence[str],
    threads: int | None,
    precision: str,
    cache_sources: Sequence[str] | None = None,
    spinning: bool = True,
    layout_passes: bool = False,
):
    """An ONNX Runtime session of ``path``. ``cache_sources`` (the sha256 of the graph and of its
    external-data files) lets a CPU session load the graph ONNX Runtime optimised on an earlier
    open from the user's cache (see ``_cached_session``); ``layout_passes``: that graph still gets
    the CPU-specific layout passes as it loads (a graph with convolutions). ``spinning=False`` puts
    ONNX Runtime's worker threads to sleep between operators instead of letting them spin, leaving
    the cores to threads working beside the session."""
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallback warnings are expected
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if precision == "fp16" and providers[0] == CPU:
        # ONNX Runtime's CPU layout optimisations (level ALL) crash the process on fp16 ViT graphs
        # (seen with onnxruntime 1.31); EXTENDED keeps every fusion but those.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        options.intra_op_num_threads = threads
    try:
        if cache_sources and list(providers) == [CPU] and os.environ.get(SESSION_CACHE_ENV, "on") != "off":
            return _cached_session(ort, path, options, cache_sources, layout_passes)
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except PackError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for corrupt models
        raise PackError(f"{path}: ONNX Runtime cannot load it ({one_line(e)})") from None


# ---------------------------------------------------------------------- optimised-graph cache
#
# Creating a session spends most of its time parsing the graph with its weights inline and
# optimising it (ViT-B-32's text tower: 0.74 s of CPU, 400 MB). ONNX Runtime can save the
# optimised graph, its weights in a separate file it maps rather than copies; loading that with
# optimisations off takes 0.28 s and 210 MB, and computes the same numbers. The saved graph is
# optimised at level EXTENDED: that level's fusions do not depend on the CPU. ALL adds layout
# changes for convolutions, which depend on it: a text tower has none and loads with
# optimisations off; an image tower's (its patch embedding) are made as it loads, which still
# takes a third less time (ViT-B-32-256: 0.32 s against 0.49 s idle; 60 photos of 12 MP indexed
# in 7.3 s against 8.0 s, the open no longer slowed by the decoding beside it) for the same
# vectors. The cache is derived data under the user's cache folder, one folder per (graph and
# external-data sha256, onnxruntime version, level, machine); each file's sha256 is recorded at
# write and checked again whenever its size or mtime changed. A damaged, foreign or unloadable
# entry is rebuilt; a cache that cannot be written costs nothing but the speed. It holds a
# second copy of the towers' weights, so it is bounded (SESSION_CACHE_KEEP entries within
# SESSION_CACHE_BYTES, the most recently used kept). PIXFIND_SESSION_CACHE=off turns it off.

SESSION_CACHE_ENV = "PIXFIND_SESSION_CACHE"
SESSION_CACHE_DIR = "onnx-sessions"
SESSION_CACHE_KEEP = 6  # entries kept, most recently used first: three models' two towers...
SESSION_CACHE_BYTES = 2 << 30  # ...within this many bytes (the newest entry is kept whatever its size)
_CACHE_GRAPH, _CACHE_DATA, _CACHE_RECORD = "graph.onnx", "graph.onnx.data", "entry.json"
_FROM_CACHE: weakref.WeakSet = weakref.WeakSet()  # sessions loaded from the cache (told by PIXFIND_DEBUG_SESSIONS)
_CACHE_FORMAT = 1


def _cache_key(ort, sources: Sequence[str]) -> str:
    import hashlib
    import platform

    parts = ["pixfind-session", str(_CACHE_FORMAT), ort.__version__, "extended", platform.machine(), *sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _cache_entry_ok(entry: Path, key: str) -> bool:
    """Whether an entry holds the files its record describes (hashing only those whose size or
    mtime changed since the record was written)."""
    import json

    try:
        record = json.loads((entry / _CACHE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = record.get("files") if isinstance(record, dict) else None
    if record.get("format") != _CACHE_FORMAT or record.get("key") != key or not isinstance(files, dict):
        return False
    if set(files) - {_CACHE_GRAPH, _CACHE_DATA} or _CACHE_GRAPH not in files:
        return False
    for name, facts in files.items():
        if not (isinstance(facts, list) and len(facts) == 3 and isinstance(facts[2], str)):
            return False
        if _stat(entry / name) == (facts[0], facts[1]):
            continue
        try:
            if sha256_file(entry / name) != facts[2]:
                return False
        except OSError:
            return False
    return True


def _cached_session(ort, path: Path, options, sources: Sequence[str], layout_passes: bool = False):
    import shutil
    import tempfile

    from .paths import cache_dir

    root = cache_dir() / SESSION_CACHE_DIR
    key = _cache_key(ort, sources)
    entry = root / key
    level = options.graph_optimization_level  # the caller's: ALL, or EXTENDED for fp16 (see _open_session)
    load_level = level if layout_passes else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = _load_entry(ort, entry, key, options, load_level)
    if session is not None:
        return session
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    try:
        root.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    except OSError:
        options.graph_optimization_level = level
        return ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    try:
        options.optimized_model_filepath = str(build / _CACHE_GRAPH)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", _CACHE_DATA)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
        _write_cache_entry(build, key, entry)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    _prune_cache(root)
    if not layout_passes:
        return session
    # The session just built lacks the layout passes: its numbers would differ in the last bits from
    # every later run's (the entry with them, which computes what the pack's graph does at that level).
    del session
    options.optimized_model_filepath = ""
    session = _load_entry(ort, entry, key, options, load_level)
    if session is None:  # the entry could not be written: the pack's own graph, as without a cache
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    return session


def _load_entry(ort, entry: Path, key: str, options, level):
    """A session of the cache entry's graph opened at ``level``; None when the entry is missing,
    damaged or foreign, or ONNX Runtime cannot load it (it is then rebuilt)."""
    if not _cache_entry_ok(entry, key):
        return None
    options.graph_optimization_level = level
    try:
        session = ort.InferenceSession(str(entry / _CACHE_GRAPH), sess_options=options, providers=[CPU])
    except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types for a graph it cannot load
        return None
    try:
        os.utime(entry)  # recently used: kept by _prune_cache
    except OSError:
        pass
    _FROM_CACHE.add(session)
    return session


def _write_cache_entry(build: Path, key: str, entry: Path) -> None:
    """Record the files ONNX Runtime wrote into ``build`` and move it into place (best effort)."""
    import json
    import shutil

    try:
        files = {}
        for name in (_CACHE_GRAPH, _CACHE_DATA):
            if (build / name).is_file():
                size, mtime = _stat(build / name)
                files[name] = [size, mtime, sha256_file(build / name)]
        if _CACHE_GRAPH not in files:
            return
        record = {"format": _CACHE_FORMAT, "key": key, "files": files}
        (build / _CACHE_RECORD).write_text(json.dumps(record), encoding="utf-8")
        if entry.exists():  # damaged or foreign: replaced
            shutil.rmtree(entry, ignore_errors=True)
        os.rename(build, entry)
    except OSError:  # no space, read-only cache, another process won the race: the cache is optional
        pass


def _prune_cache(root: Path) -> None:
    try:
        entries = sorted((e for e in root.iterdir() if not e.name.startswith(".")), key=lambda e: e.stat().st_mtime, reverse=True)
    except OSError:
        return
    import shutil

    from .paths import dir_size

    total = 0
    for rank, entry in enumerate(entries):
        try:
            total += dir_size(entry)
        except OSError:  # removed meanwhile by another process's pruning
            pass
        if rank and (rank >= SESSION_CACHE_KEEP or total > SESSION_CACHE_BYTES):
            shutil.rmtree(entry, ignore_errors=True)


def _output_dim(session, path: Path) -> int | None:
    shape = session.get_outputs()[0].shape
    return shape[-1] if shape and isinstance(shape[-1], int) else None


def _fixed(dim) -> int | None:
    """A declared dimension as an int, or None when it is symbolic ("batch") or unknown."""
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def check_graph(
    session,
    path: Path,
    expected_input: Sequence[int | None],
    what: str,
    manifest_path: Path,
    *,
    input_dtype: str | None = None,
    mask_input: str | None = None,
) -> str:
    """Refuse a graph whose declared inputs or output disagree with pack.json; returns the name of
    the main input (the pixels or the token ids).

    ``expected_input`` is the input shape pack.json implies (None where any size will do, as
    for the batch); symbolic dimensions in the graph are accepted wherever they appear.
    ``input_dtype`` ("int64", "int32"), when given, is the element type the input must take;
    ``mask_input`` names a second input (the attention mask), of the same shape and type.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    wanted_inputs = 1 if mask_input is None else 2
    if len(inputs) != wanted_inputs or len(outputs) < 1:
        takes = "one input" if mask_input is None else f"two inputs (the ids and {mask_input!r})"
        names = ", ".join(repr(i.name) for i in inputs)
        raise PackError(
            f"{path}: has {len(inputs)} inputs ({names}) and {len(outputs)} outputs; "
            f"{manifest_path.name} describes a {what} encoder that takes {takes}"
        )
    if mask_input is not None and mask_input not in [i.name for i in inputs]:
        names = ", ".join(repr(i.name) for i in inputs)
        raise PackError(f"{path}: has no input named {mask_input!r} (its inputs: {names}), the mask_input of {manifest_path.name}")
    main = next(i for i in inputs if i.name != mask_input)
    for node in [main] + [i for i in inputs if i.name == mask_input]:
        _check_input(node, path, expected_input, input_dtype, manifest_path)
    out_shape = outputs[0].shape
    if out_shape is not None and len(out_shape) != 2:
        raise PackError(f"{path}: its output has shape {list(out_shape)}, not [N, embedding_dim]")
    return main.name


def _check_input(node, path: Path, expected_input: Sequence[int | None], dtype: str | None, manifest_path: Path) -> None:
    shape = node.shape
    if shape is not None and len(shape) != len(expected_input):
        raise PackError(
            f"{path}: takes a rank-{len(shape)} input {list(shape)}, not the {_shape_text(expected_input)} "
            f"that {manifest_path.name} describes"
        )
    for axis, (declared, wanted) in enumerate(zip(shape or [], expected_input)):
        declared = _fixed(declared)
        if declared is not None and wanted is not None and declared != wanted:
            raise PackError(
                f"{path}: input {node.name!r} has size {declared} on axis {axis} but {manifest_path} "
                f"implies {wanted} ({list(shape)} vs {_shape_text(expected_input)}); "
                "pack.json does not describe this model"
            )
    if dtype is not None and node.type != f"tensor({dtype})":
        raise PackError(
            f"{path}: input {node.name!r} takes {node.type}, but {manifest_path.name} says the token ids are {dtype} "
            "(text ids_dtype)"
        )


def _fixed_batch(session) -> int | None:
    """The batch size a graph was exported with when its batch axis is not dynamic (Immich's are 1)."""
    shape = session.get_inputs()[0].shape
    return _fixed(shape[0]) if shape else None


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


class _EarlyTexts:
    """Texts an encoder is embedding on a background thread (``Encoder.start_loading``)."""

    def __init__(self, texts: Sequence[str], language: str | None):
        self.keys = {(t, language) for t in texts}
        self.vectors: dict[tuple[str, str | None], np.ndarray] = {}
        self.done = threading.Event()

    def take(self, texts: list[str], language: str | None) -> list[np.ndarray] | None:
        """The vectors of ``texts``, once the thread is done; None when it was not embedding all of
        them, or failed (the caller then embeds them itself, and meets the error there)."""
        keys = [(t, language) for t in texts]
        if not keys or not set(keys) <= self.keys:
            return None
        self.done.wait()
        return [self.vectors[k] for k in keys] if all(k in self.vectors for k in keys) else None


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
        # The files as they were just checked: a session opened later re-checks a file that changed
        # (its graph and the external-data files it reads).
        self._checked = {name: _stat(pack_member(self.pack_dir, name)) for name in self.manifest.files}
        self._checked.update({VISUAL_FILE: _stat(self._visual_path), TEXTUAL_FILE: _stat(self._textual_path)})
        self._text_input: str | None = None
        self._threads = threads
        self._visual = None
        self._textual = None
        self._preprocessor = None
        self._tokenizer = None
        self._tokenizer_path = pack_member(self.pack_dir, self.manifest.text.tokenizer_file)
        self._opening = threading.Lock()
        self._early: _EarlyTexts | None = None  # texts being embedded ahead of time (start_loading)
        # Only the app's encoders (lazy) use the optimised-graph cache: building, verifying or
        # installing a pack opens its sessions once, and must leave nothing behind but the pack.
        self._use_session_cache = lazy
        if not lazy:
            # Open both sessions now: a damaged or mismatched pack must fail at load, not mid-search.
            self.load(image=True, text=True)

    @classmethod
    def installed(cls, pack_dir: Path | str) -> Encoder:
        """The app's encoder of an installed pack: its files were verified when it was installed
        (hashing each time is slow; one whose size or mtime changed is hashed), and each tower
        opens on its first use."""
        return cls(pack_dir, verify=False, lazy=True)

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

    def start_loading(
        self, image: bool = False, text: bool = True, texts: Sequence[str] = (), language: str | None = None
    ) -> Encoder:
        """Start opening the named towers, then embedding ``texts``, on a background thread; return at once.

        ONNX Runtime releases the GIL while it builds a session and while it runs one, so a command
        that starts this before its own imports (SQLAlchemy, the catalogue) finds its query already
        embedded when it gets to it. ``encode_texts`` of those texts waits for the thread and returns
        what it computed (the same call, made earlier). A tower that fails to open here is opened
        again where it is first used, and its error raised there."""
        early = _EarlyTexts(texts, language)

        def load() -> None:
            try:
                self.load(image=image, text=text)
                if early.keys:
                    early.vectors.update(zip([(t, language) for t in texts], self._encode_texts_now(list(texts), language)))
            except Exception:  # noqa: BLE001 - raised again, with its one-line message, on first use
                pass
            finally:
                early.done.set()

        self._early = early
        threading.Thread(target=load, name="pixfind-load-towers", daemon=True).start()
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
                    text = self.manifest.text
                    expected = (None, text.context_length)
                    session = self._open_checked(
                        self._textual_path, TEXTUAL_FILE, expected, TEXT, input_dtype=text.ids_dtype, mask_input=text.mask_input
                    )
                    self._text_input = next(i.name for i in session.get_inputs() if i.name != text.mask_input)
                    self._check_sequence_axis(session)
                    self._textual = session
        return self._textual

    def _check_sequence_axis(self, session) -> None:
        """A trimmed tower needs a dynamic token axis; a dynamic axis says nothing about the context length,
        so a graph pixfind exported records it in its metadata."""
        text, path = self.manifest.text, self._textual_path
        length = _fixed(next(i for i in session.get_inputs() if i.name == self._text_input).shape[1])
        if text.sequence == "trim" and length is not None:
            raise PackError(
                f"{path}: its sequence axis is fixed at {length}, but pack.json says sequence 'trim' "
                "(batches padded to their longest text); the pack is inconsistent"
            )
        recorded = session.get_modelmeta().custom_metadata_map.get(GRAPH_CONTEXT_LENGTH_KEY)
        if length is None and recorded is not None and recorded != str(text.context_length):
            raise PackError(
                f"{path}: input {self._text_input!r} has size up to {recorded[:20]} on axis 1 (its recorded context length) "
                f"but pack.json says context_length {text.context_length}; pack.json does not describe this model"
            )

    def _open_checked(self, path: Path, name: str, expected_input, what: str, **graph_checks):
        self._recheck(path, name)
        sources = [self.manifest.files.get(name)]
        for external in check_external_data(self.pack_dir, self.manifest, name):
            member = external.relative_to(self.pack_dir).as_posix()
            self._recheck(external, member)
            sources.append(self.manifest.files.get(member))
        # Both towers open from the optimised-graph cache: the text tower's open is a cold search's
        # largest cost, the image tower's an indexing run's (see the cache's notes above).
        cached = self._use_session_cache and all(sources)
        # The image tower runs beside the threads decoding the next photos (indexing): its workers
        # spinning between operators took their cores (60 photos of 12 MP: 5.9 s against 5.5 s).
        session = self._session(
            path,
            self.manifest.text_precision if what == TEXT else self.manifest.precision,
            sources if cached else None,
            spinning=what == TEXT,
            layout_passes=what == IMAGE,
        )
        check_graph(session, path, expected_input, what, self.pack_dir / "pack.json", **graph_checks)
        if os.environ.get(DEBUG_SESSIONS_ENV):
            import sys

            source = " from the optimised-graph cache" if session in _FROM_CACHE else ""
            print(f"pixfind: debug: opened the {what} session of {self.manifest.name}{source}", file=sys.stderr, flush=True)
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

    def _session(
        self,
        path: Path,
        precision: str,
        cache_sources: Sequence[str] | None = None,
        spinning: bool = True,
        layout_passes: bool = False,
    ):
        session = _open_session(path, self.providers, self._threads, precision, cache_sources, spinning, layout_passes)
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

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256, language: str | None = None) -> np.ndarray:
        """Embed texts; returns float32 [N, D].

        ``language``: the texts' language, an ISO 639-1 code ("de") or a FLORES-200 code ("deu_Latn"),
        for packs whose text tower starts with a language token (NLLB-CLIP); without it each text's
        language is detected (see :mod:`desktop_app.language`). Other packs ignore it.
        """
        import numpy as np

        texts = list(texts)
        early = self._early
        ready = early.take(texts, language) if early is not None else None
        if ready is not None:
            return np.stack(ready)
        return self._encode_texts_now(texts, language, batch_size)

    def _encode_texts_now(self, texts: list[str], language: str | None, batch_size: int = 256) -> np.ndarray:
        import numpy as np

        codes = self._languages(texts, language)
        if not texts:
            return self._empty()
        session = self.textual_session
        out = []
        for i in range(0, len(texts), batch_size):
            rows = texts[i : i + batch_size]
            tokens = self.tokenizer.tokenize(rows, language=codes[i : i + batch_size] if codes else None)
            out.append(self._run_text(session, tokens.ids, tokens.lengths))
        return np.concatenate(out, axis=0)

    def _languages(self, texts: list[str], language: str | None) -> list[str] | None:
        """Each text's FLORES-200 code for a pack with a language token; None for other packs."""
        from . import language as lang

        setting = self.manifest.text.language
        if setting is None:
            if language is not None:
                lang.to_flores200(language)  # an unknown code is an error whatever the model
            return None
        if language is not None:
            code = self.tokenizer.check_language(lang.to_flores200(language))
            return [code] * len(texts)
        return [self.tokenizer.known_language(lang.query_language(t, setting["default"]), setting["default"]) for t in texts]

    def _run_text(self, session, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        import numpy as np

        text = self.manifest.text
        if text.sequence == "trim":
            # The rows' embeddings do not depend on positions after their last token (checked when
            # the pack was exported), so the batch is cut to its longest text.
            ids = ids[:, : max(1, int(lengths.max()))]
        dtype = np.int32 if text.ids_dtype == "int32" else np.int64
        feed = {self._text_input: np.ascontiguousarray(ids, dtype=dtype)}
        if text.mask_input is not None:
            feed[text.mask_input] = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(dtype)
        return self._run_feed(session, feed)

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
        return self._run_feed(session, {session.get_inputs()[0].name: inputs})

    def _run_feed(self, session, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Run a graph; a graph exported with a fixed batch size (Immich's: 1) gets its rows in batches
        of that size, the last one padded with copies of its last row."""
        import numpy as np

        fixed = _fixed_batch(session)
        rows = len(next(iter(feed.values())))
        if fixed is None or fixed == rows:
            (embedding,) = session.run(None, feed)
            return np.ascontiguousarray(embedding, dtype=np.float32)
        out = []
        for start in range(0, rows, fixed):
            chunk = {k: v[start : start + fixed] for k, v in feed.items()}
            missing = fixed - len(next(iter(chunk.values())))
            if missing:
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], missing, axis=0)]) for k, v in chunk.items()}
            (embedding,) = session.run(None, chunk)
            out.append(np.asarray(embedding[: fixed - missing], dtype=np.float32))
        return np.ascontiguousarray(np.concatenate(out, axis=0))
