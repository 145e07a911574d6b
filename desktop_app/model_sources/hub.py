"""Model repositories on the Hugging Face Hub: ``hf:ORG/REPO[@REVISION]``, through ``huggingface_hub``.

``huggingface_hub`` does the transfers: its cache (resumed ``.incomplete`` files, one blob per
file version), ``HF_ENDPOINT`` (a mirror, or a test server), ``HF_HUB_OFFLINE`` and tokens.
What it does not do is check the bytes against the repository: it names a blob after the
file's ETag but never hashes it. So every file fetched here is hashed and compared with the
repository's listing (the sha256 of an LFS file, the git blob sha1 of a small one), and a file
that does not match is deleted from the cache and refused in one line.

The cache is huggingface_hub's own when the user points at one (``HF_HUB_CACHE`` or
``HF_HOME``), else a ``huggingface`` folder in pixfind's cache, so that ``PIXFIND_HOME`` keeps
everything in one place. Only the files a model needs are fetched (``allow_patterns`` lists them
one by one), never a whole repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import Cancelled, PixfindError, one_line
from ..pack import sha256_file

SCHEME = "hf:"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")

Progress = Callable[[int, "int | None"], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{SCHEME}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_ref(text: str) -> bool:
    return isinstance(text, str) and text.startswith(SCHEME)


def parse_ref(text: str) -> HubRef:
    """``hf:ORG/REPO`` or ``hf:ORG/REPO@REVISION`` (a branch, tag or commit)."""
    body = text[len(SCHEME) :] if text.startswith(SCHEME) else text
    repo, _, revision = body.partition("@")
    if not _REPO_RE.match(repo) or ".." in repo:
        raise PixfindError(f"{text!r} is not a Hugging Face repository: write hf:ORG/REPO or hf:ORG/REPO@REVISION")
    if revision and (not _REVISION_RE.match(revision) or ".." in revision or revision.endswith("/")):
        raise PixfindError(f"{text!r}: {revision!r} is not a valid revision (a branch, tag or commit)")
    return HubRef(repo, revision or None)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None  # LFS files
    git_sha1: str | None  # small files: the git blob id


def cache_dir() -> Path | None:
    """None: huggingface_hub's own cache, which the user chose with HF_HUB_CACHE or HF_HOME."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME"):
        return None
    return paths.cache_dir() / "huggingface"


def _literal(path: str) -> str:
    """An fnmatch pattern matching exactly ``path`` (huggingface_hub filters files with fnmatch)."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's content: sha1 of ``blob <size>\\0`` and the bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class HubRepo:
    """One repository at one commit: its file listing, and the files fetched from it."""

    def __init__(
        self,
        ref: HubRef,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.ref = ref
        self.progress = progress
        self.cancel = cancel
        self.log = log or (lambda _msg: None)
        self.commit: str | None = None
        self.offline = False
        self._files: dict[str, RemoteFile] | None = None
        self._folder: Path | None = None
        self._verified: set[str] = set()

    # ---------------------------------------------------------------- listing

    def files(self) -> dict[str, RemoteFile]:
        """Every file of the repository at the revision (from the cache when offline)."""
        if self._files is None:
            self._files = self._list()
        return self._files

    def _list(self) -> dict[str, RemoteFile]:
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile

        api = HfApi()
        try:
            info = api.model_info(self.ref.repo_id, revision=self.ref.revision)
            self.commit = info.sha
            listing = {}
            for entry in api.list_repo_tree(self.ref.repo_id, recursive=True, revision=self.commit):
                if isinstance(entry, RepoFile):
                    lfs = entry.lfs
                    listing[entry.path] = RemoteFile(
                        entry.path,
                        entry.size,
                        (lfs.sha256 if lfs is not None else None),
                        (None if lfs is not None else entry.blob_id),
                    )
            return listing
        except Exception as e:  # noqa: BLE001 - turned into one line or an offline fallback below
            if not _is_offline(e):
                raise _error(self.ref, e) from None
        return self._list_cached()

    def _list_cached(self) -> dict[str, RemoteFile]:
        """Offline (HF_HUB_OFFLINE, or the Hub unreachable): the files of the cached snapshot, if any."""
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(
                    self.ref.repo_id, revision=self.ref.revision, cache_dir=cache_dir(), local_files_only=True
                )
            )
        except Exception as e:  # noqa: BLE001
            raise PixfindError(
                f"{self.ref}: the Hub cannot be reached (offline) and no copy of it is cached ({one_line(_reason(e), 120)})"
            ) from None
        self.offline, self._folder, self.commit = True, folder, folder.name
        self.log(f"{self.ref}: offline; using the copy cached at {folder}")
        return {
            p.relative_to(folder).as_posix(): RemoteFile(p.relative_to(folder).as_posix(), None, None, None)
            for p in folder.rglob("*")
            if p.is_file()
        }

    # ---------------------------------------------------------------- fetching

    def fetch(self, wanted: Iterable[str]) -> Path:
        """Download the files ``wanted`` (resuming partial ones), check each against the listing,
        and return the snapshot folder that holds them (its files are links into the cache)."""
        wanted = list(dict.fromkeys(wanted))
        listing = self.files()
        missing = [p for p in wanted if p not in listing]
        if missing:
            raise PixfindError(f"{self.ref}: {missing[0]} is missing from the repository; refusing it")
        if self.offline:
            return self._folder
        from huggingface_hub import snapshot_download, try_to_load_from_cache

        total = sum(listing[p].size or 0 for p in wanted) or None
        # Files complete in the cache count as done from the start, so the bar ends at 100 %.
        cached = sum(
            listing[p].size or 0
            for p in wanted
            if isinstance(try_to_load_from_cache(self.ref.repo_id, p, cache_dir=cache_dir(), revision=self.commit), str)
        )
        if self.progress is not None and total and 0 < cached < total:
            self.progress(cached, total)
        try:
            folder = Path(
                snapshot_download(
                    self.ref.repo_id,
                    revision=self.commit,
                    cache_dir=cache_dir(),
                    allow_patterns=[_literal(p) for p in wanted],
                    tqdm_class=_progress_class(self.progress, total, self.cancel, str(self.ref), cached),
                    max_workers=4,
                )
            )
        except Cancelled:
            raise
        except Exception as e:  # noqa: BLE001 - one line for the user
            raise _error(self.ref, e) from None
        for name in wanted:
            if name not in self._verified:
                self._verify(folder, listing[name])
                self._verified.add(name)
        self._folder = folder
        self._remember_revision(folder)
        return folder

    def _remember_revision(self, snapshot: Path) -> None:
        """Record which commit the branch or tag pointed at (the cache's refs/ file), as huggingface_hub
        does when it resolves a revision itself: offline, ``hf:ORG/REPO`` then finds this snapshot."""
        revision = self.ref.revision or "main"
        if revision == self.commit:
            return
        ref_file = snapshot.parent.parent / "refs" / revision
        try:
            ref_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = ref_file.with_name(ref_file.name + ".pixfind-tmp")
            tmp.write_text(self.commit or "", encoding="utf-8")
            os.replace(tmp, ref_file)
        except OSError:
            pass  # only offline use needs it

    def _verify(self, folder: Path, remote: RemoteFile) -> None:
        local = folder / remote.path
        if not local.is_file():
            raise PixfindError(f"{self.ref}: {remote.path} did not arrive; refusing the model")
        problem = None
        size = local.stat().st_size
        if remote.size is not None and size != remote.size:
            problem = f"has {size} bytes, the repository says {remote.size}"
        elif remote.sha256 is not None:
            actual = sha256_file(local)
            if actual != remote.sha256:
                problem = f"sha256 {actual[:12]}… is not the repository's {remote.sha256[:12]}…"
        elif remote.git_sha1 is not None:
            actual = git_blob_sha1(local)
            if actual != remote.git_sha1:
                problem = f"git blob id {actual[:12]}… is not the repository's {remote.git_sha1[:12]}…"
        if problem:
            _forget(local)
            raise PixfindError(f"{self.ref}: {remote.path} {problem}; the download was deleted and nothing was installed")


def _forget(snapshot_file: Path) -> None:
    """Delete a bad file from the cache (its blob and the snapshot's link), so a new pull fetches it again."""
    try:
        blob = snapshot_file.resolve()
        if blob != snapshot_file:
            blob.unlink(missing_ok=True)
        snapshot_file.unlink(missing_ok=True)
    except OSError:
        pass


def _progress_class(
    progress: Progress | None, total: int | None, cancel: threading.Event | None, shown: str, already_done: int = 0
):
    """A tqdm class for huggingface_hub's bars: byte counts go to ``progress``; a cancel stops the transfer.

    ``already_done``: bytes of the wanted files complete in the cache before the transfer started."""
    from tqdm.auto import tqdm

    lock = threading.Lock()
    state = {"done": already_done}

    class _Bar(tqdm):
        def __init__(self, *args, **kwargs):
            self._counts_bytes = kwargs.get("unit") == "B" and "econstruct" not in str(kwargs.get("desc", ""))
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            resumed = int(kwargs.get("initial") or 0)  # a partial download huggingface_hub resumes
            if self._counts_bytes and resumed:
                with lock:
                    state["done"] += resumed

        def update(self, n=1):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"download of {shown} cancelled; pull again to resume it")
            if self._counts_bytes and n:
                with lock:
                    state["done"] += int(n)
                    done = state["done"]
                if progress is not None:
                    progress(done if total is None else min(done, total), total)
            return super().update(n)

    return _Bar


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def _is_offline(e: BaseException) -> bool:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(e, OfflineModeIsEnabled):
        return True
    name = type(e).__name__
    return name in ("ConnectError", "ConnectTimeout", "ConnectionError") or "Connect" in name


def _error(ref: HubRef, e: BaseException) -> PixfindError:
    from huggingface_hub import errors

    if isinstance(e, PixfindError):
        return e
    if isinstance(e, errors.GatedRepoError):
        return PixfindError(f"{ref}: the repository is gated; accept its terms on the Hub and log in (hf auth login)")
    if isinstance(e, errors.RepositoryNotFoundError):
        return PixfindError(f"{ref}: no such repository on the Hub (or it is private)")
    if isinstance(e, errors.RevisionNotFoundError):
        return PixfindError(f"{ref}: no revision {ref.revision!r} in the repository")
    if isinstance(e, errors.EntryNotFoundError):
        return PixfindError(f"{ref}: a file listed by the repository cannot be downloaded ({one_line(_reason(e), 120)})")
    if isinstance(e, errors.LocalEntryNotFoundError) or _is_offline(e):
        return PixfindError(f"{ref}: the Hub cannot be reached and the files are not cached ({one_line(_reason(e), 120)})")
    if isinstance(e, OSError) and e.errno is not None:
        return PixfindError(f"{ref}: cannot write the download ({e.strerror or one_line(e)})")
    return PixfindError(f"{ref}: download failed ({type(e).__name__}: {one_line(_reason(e), 160)})")
