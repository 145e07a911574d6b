"""`pixfind index`, `search`, `duplicates`, `status` and `watch`: the photo library from the shell."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager

import click
from sqlalchemy import func, select

from .. import model_store, paths
from ..encoder import Encoder
from ..errors import PixfindError

FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


def printable(path: str) -> str:
    """A path for display: bytes that are not UTF-8 shown as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def library_option(f):
    return click.option(
        "--library",
        "library_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Library folder (default: the per-user data folder).",
    )(f)


def model_option(f):
    return click.option("--model", "model_name", default=None, help="Model pack to use (default: the active model).")(f)


def open_library(library_dir):
    from ..library.library_dir import Library

    return Library(library_dir or paths.default_library_dir())


def load_encoder(model_name) -> Encoder:
    pack = model_store.resolve(model_name)
    notice = model_store.starter_notice_once(pack.manifest)
    if notice:
        click.echo(f"pixfind: note: {notice}", err=True)
    # Packs are verified when installed; hashing a large model on every command is too slow.
    return Encoder(pack.path, verify=False)


@contextmanager
def progress_bar(label: str):
    """A rich progress bar on stderr when it is a terminal: done/total, images per second, time left."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} img/s" if speed else "")

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(), console=Console(stderr=True)
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def summary(report) -> str:
    parts = [f"{report.encoded} photos encoded"]
    for label, n in (("unchanged", report.unchanged), ("moved", report.moved), ("copied", report.copied), ("removed", report.removed)):
        if n:
            parts.append(f"{n} {label}")
    line = ", ".join(parts) + f" in {report.seconds:.1f} s"
    if report.skipped:
        line += f"; {len(report.skipped)} files skipped, see `pixfind status --errors`"
    return line


def report_json(report) -> dict:
    return {
        "found": report.found,
        "encoded": report.encoded,
        "unchanged": report.unchanged,
        "moved": report.moved,
        "copied": report.copied,
        "removed": report.removed,
        "skipped": [{"path": printable(p), "reason": r} for p, r in report.skipped],
        "missing_folders": [printable(p) for p in report.missing_folders],
        "interrupted": report.interrupted,
        "index_error": report.index_error,
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }


def finish(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report_json(report)))
    else:
        for folder in report.missing_folders:
            click.echo(f"pixfind: warning: {printable(folder)}: folder not found, its photos are kept", err=True)
        click.echo(summary(report))
    if report.interrupted:
        click.echo("pixfind: interrupted; run `pixfind index` again to resume", err=True)
        raise SystemExit(130)
    if report.index_error:
        raise PixfindError(report.index_error)


@click.command("index")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False))
@library_option
@model_option
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096))
@click.option("--workers", default=None, type=click.IntRange(1, 256), help="Decoding threads (default: CPU count).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index_command(folders, library_dir, model_name, batch_size, workers, as_json):
    """Add FOLDERS to the library and index their photos; with no FOLDERS, refresh the whole library."""
    from ..library.indexer import Indexer

    encoder = load_encoder(model_name)
    with open_library(library_dir) as library:
        if not folders and not library.catalogue.folders():
            raise PixfindError("the library has no folders yet: run `pixfind index FOLDER`")
        with progress_bar("indexing") as progress:
            indexer = Indexer(library, encoder, batch_size=batch_size, workers=workers, progress=progress)
            report = indexer.run(list(folders) or None)
    finish(report, as_json)


def _date(value):
    from ..library.metadata import wall_clock

    return None if value is None else wall_clock(value)


@click.command("search")
@click.argument("query", required=False)
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False), help="An example image (repeatable).")
@click.option("--add", multiple=True, help="Another term to add (text or image path; repeatable).")
@click.option("--subtract", multiple=True, help="A term to subtract (text or image path; repeatable).")
@click.option("--folder", type=click.Path(file_okay=False), help="Only photos under this folder.")
@click.option("--after", type=click.DateTime(FORMATS), help="Taken on or after this date (EXIF, else file time).")
@click.option("--before", type=click.DateTime(FORMATS), help="Taken before this date.")
@click.option("--camera", help="Camera make or model contains this text.")
@click.option("--gps/--no-gps", "has_gps", default=None, help="Only photos with (or without) a GPS position.")
@click.option("--min-score", type=float, default=None, help="Leave out results below this similarity.")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--limit", "-n", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def search_command(query, images, add, subtract, folder, after, before, camera, has_gps, min_score, sort, limit, as_json, library_dir, model_name):
    """Find photos matching QUERY: text, image paths, `+`/`-` terms and `2:term` weights."""
    from ..library import query as queries
    from ..library.search import Filters, SearchEngine

    terms = queries.parse(query, images, add, subtract)
    encoder = load_encoder(model_name)
    with open_library(library_dir) as library:
        engine = SearchEngine(library, encoder)
        filters = Filters(folder, _date(after), _date(before), camera, has_gps)
        results = engine.search(engine.query_vector(terms), filters, limit, min_score, sort)
    rows = [
        {
            "rank": r.rank,
            "score": round(r.score, 4),
            "path": printable(r.photo.path),
            "date": dt.datetime.fromtimestamp(r.photo.date, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        }
        for r in results
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no matching photos")
        return
    click.echo(f"{'rank':>4}  {'score':<5}  {'date':<19}  path")
    for row in rows:
        click.echo(f"{row['rank']:>4}  {row['score']:.3f}  {row['date']}  {row['path']}")


@click.command("duplicates")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Similarity at which photos count as duplicates (default 0.95).")
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def duplicates_command(threshold, as_json, library_dir, model_name):
    """Groups of near-duplicate photos, largest groups first."""
    from ..library.duplicates import DEFAULT_THRESHOLD, find_groups
    from ..library.library_dir import model_key

    encoder = load_encoder(model_name)
    with open_library(library_dir) as library:
        groups = find_groups(library, model_key(encoder.manifest), encoder.dim, threshold or DEFAULT_THRESHOLD)
    data = [[{"path": printable(p.path), "similarity": round(sim, 4)} for p, sim in g] for g in groups]
    if as_json:
        click.echo(json.dumps(data))
        return
    if not data:
        click.echo("no near-duplicates found")
    for i, group in enumerate(data, 1):
        click.echo(f"group {i} ({len(group)} photos)")
        for item in group:
            click.echo(f"  {item['similarity']:.3f}  {item['path']}")


@click.command("status")
@click.option("--errors", is_flag=True, help="List the files that could not be indexed and why.")
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def status_command(errors, as_json, library_dir, model_name):
    """Folders, photo counts, the active model, skipped files and index health."""
    from ..library.catalogue import Embedding, Photo, SkippedFile
    from ..library.library_dir import model_key
    from ..library.vector_index import VectorIndex

    with open_library(library_dir) as library:
        cat = library.catalogue
        with cat.session() as s:
            folders = [
                {"path": printable(f.path), "photos": s.scalar(select(func.count()).select_from(Photo).where(Photo.folder_id == f.id)), "present": os.path.isdir(f.path)}
                for f in cat.folders()
            ]
            photos = s.scalar(select(func.count()).select_from(Photo))
            models = dict(s.execute(select(Embedding.model, func.count()).group_by(Embedding.model)).all())
            skipped = [(printable(r.path), r.reason) for r in s.scalars(select(SkippedFile).order_by(SkippedFile.path))]
        active = None
        try:
            pack = model_store.resolve(model_name)
            key = model_key(pack.manifest)
            health = VectorIndex(library.vectors_dir, key, pack.manifest.embedding_dim, library.catalogue_id).health(cat)
            active = {"name": pack.name, "key": key, "embedded": models.get(key, 0), "index": health}
        except PixfindError as e:
            active = {"problem": str(e)}
        data = {
            "library": str(library.directory),
            "folders": folders,
            "photos": photos,
            "models": models,
            "active_model": active,
            "skipped": len(skipped),
        }
        if errors:
            data["errors"] = [{"path": p, "reason": r} for p, r in skipped]
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"library: {data['library']}")
    for f in folders:
        click.echo(f"  {f['path']}: {f['photos']} photos" + ("" if f["present"] else " (folder not found)"))
    click.echo(f"photos: {photos}")
    if "problem" in active:
        click.echo(f"active model: none ({active['problem']})")
    else:
        click.echo(f"active model: {active['name']}: {active['embedded']} of {photos} photos encoded")
        click.echo(f"vector index: {active['index']}")
    for key, n in models.items():
        if "key" not in active or key != active["key"]:
            click.echo(f"other model {key}: {n} photos encoded")
    click.echo(f"skipped files: {len(skipped)}" + ("" if errors or not skipped else " (list them with --errors)"))
    if errors:
        for p, r in skipped:
            click.echo(f"  {p}: {r}")


@click.command("watch")
@click.option("--settle", type=float, default=1.0, show_default=True, help="Seconds of quiet before re-indexing.")
@library_option
@model_option
def watch_command(settle, library_dir, model_name):
    """Keep the library current while running: re-index whenever its folders change."""
    from ..library.indexer import Indexer
    from ..library.watcher import watch

    encoder = load_encoder(model_name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_library(library_dir) as library:
        folders = [f.path for f in library.catalogue.folders() if os.path.isdir(f.path)]
        if not folders:
            raise PixfindError("the library has no folders yet: run `pixfind index FOLDER`")

        def on_report(report):
            click.echo(summary(report), err=False)
            sys.stdout.flush()

        click.echo(f"watching {len(folders)} folders; Ctrl-C to stop")
        sys.stdout.flush()
        try:
            watch(lambda: Indexer(library, encoder), folders, stop, on_report, settle)
        except KeyboardInterrupt:
            pass


COMMANDS = [index_command, search_command, duplicates_command, status_command, watch_command]
