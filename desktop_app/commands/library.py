"""`pixfind index`, `search`, `duplicates`, `status` and `watch`: the photo library from the shell.

Each command parses its options, calls the library service and prints its typed answer.
Names from the disk go through ``printable`` in text output; JSON carries them exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click

from .. import paths
from ..errors import PixfindError
from ._common import ctrl_c_cancels, library_option, model_option, printable

if TYPE_CHECKING:
    from ..encoder import Encoder
    from ..library.query import Term
    from ..services.library import LibraryService

INDEX_BATCH_SIZE = 8  # see index_command
MATCHED_LINES = 3  # lines of a photo's text shown under a result that matched quoted words
FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


def embedding_early(model_name: str | None, terms: list[Term], language: str | None) -> Encoder | None:
    """The model's encoder, already embedding the query's words on a thread: ONNX Runtime opens the
    text tower and runs it without the GIL while this process imports SQLAlchemy and opens the
    library. None when the query has no words for the model, or there is no model (``open_service``
    then says so)."""
    texts = [t.value for t in terms if t.kind == "text"]
    if not texts:
        return None
    from ..encoder import Encoder
    from ..model_store import resolve

    try:
        encoder = Encoder.installed(resolve(model_name).path)
    except PixfindError:
        return None
    return encoder.start_loading(text=True, texts=list(dict.fromkeys(texts)), language=language)


def json_path(path: str) -> str:
    """A path for JSON: exact, except bytes that are not UTF-8, which become \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def open_service(library_dir, model_name=None, *, model: bool = True, encoder: Encoder | None = None) -> LibraryService:
    """The library service for a command, with the model loaded when the command needs one
    (``encoder``: the model's, made by ``embedding_early`` before the service was imported)."""
    from ..services.library import LibraryService

    service = LibraryService(library_dir or paths.default_library_dir())
    if model:
        from ..model_store import starter_notice_once  # not services.models: it imports the downloader

        try:
            service.load_model(model_name, encoder=encoder)
        except BaseException:
            service.close()
            raise
        notice = starter_notice_once(service.encoder.manifest)
        if notice:
            click.echo(f"pixfind: note: {notice}", err=True)
    return service


def report_json(report) -> dict:
    return {
        "found": report.found,
        "encoded": report.encoded,
        "unchanged": report.unchanged,
        "moved": report.moved,
        "copied": report.copied,
        "removed": report.removed,
        "skipped": [{"path": json_path(p), "reason": r} for p, r in report.skipped],
        "missing_folders": [json_path(p) for p in report.missing_folders],
        "interrupted": report.interrupted,
        "index_error": report.index_error,
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
        "ocr": ocr_json(report.ocr),
    }


def ocr_json(report) -> dict | None:
    """The OCR pass's report; None when it did not run (indexing was interrupted)."""
    if report is None:
        return None
    return {
        "enabled": not report.disabled,
        "total": report.total,
        "read": report.read,
        "lines": report.lines,
        "failed": [{"path": json_path(p), "reason": r} for p, r in report.failed],
        "interrupted": report.interrupted,
        "error": report.error,
        "seconds": round(report.seconds, 3),
    }


def finish(report, as_json: bool) -> None:
    from ..services.records import describe_report

    ocr = report.ocr
    if as_json:
        click.echo(json.dumps(report_json(report)))
    else:
        for folder in report.missing_folders:
            click.echo(f"pixfind: warning: {printable(folder)}: folder not found, its photos are kept", err=True)
        click.echo(describe_report(report))
        for path, reason in ocr.failed if ocr is not None else ():
            click.echo(f"pixfind: warning: {printable(path)}: text not read ({printable(reason)})", err=True)
    if ocr is not None and ocr.error:  # the photos are indexed and searchable: a warning, not a failure
        click.echo(f"pixfind: warning: {printable(ocr.error)}", err=True)
    if report.interrupted or (ocr is not None and ocr.interrupted):
        click.echo("pixfind: interrupted; run `pixfind index` again to resume", err=True)
        raise SystemExit(130)
    if report.index_error:
        raise PixfindError(report.index_error)


@click.command("index")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False))
@library_option
@model_option
# 8 by measurement (issue 13): batches of 16 and 32 were no faster within noise on 2 cores
# (starter pack, 120 photos: 6.3-6.4 s against 6.45 s) and took 100 MB and 300 MB more memory.
@click.option(
    "--batch-size", default=INDEX_BATCH_SIZE, show_default=True, type=click.IntRange(1, 4096),
    help="Photos encoded per model call.",
)  # fmt: skip
@click.option("--workers", default=None, type=click.IntRange(1, 256), help="Decoding threads (default: CPU count).")
@click.option(
    "--ocr/--no-ocr", "ocr", default=None, envvar="PIXFIND_OCR", show_envvar=True,
    help="Read the text in the photos, to find them by the words in them (kept for the library; on for new libraries).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index_command(folders, library_dir, model_name, batch_size, workers, ocr, as_json):
    """Add FOLDERS to the library and index their photos; with no FOLDERS, refresh the whole library.

    Then the text in the photos is read (a second pass: search works meanwhile; stopped, it
    resumes where it stopped), unless the library has it switched off with --no-ocr."""
    from contextlib import ExitStack

    from ..progress import progress_bar

    with open_service(library_dir, model_name) as service, ctrl_c_cancels() as cancel, ExitStack() as bars:
        if ocr is not None:
            service.set_ocr_enabled(ocr)
        progress = bars.enter_context(progress_bar("indexing"))
        text_bar = None

        def reading_text(done: int, total: int) -> None:
            nonlocal text_bar
            if text_bar is None:  # the indexing bar ends where reading the text begins
                bars.close()
                text_bar = bars.enter_context(progress_bar("Reading text"))
            text_bar(done, total)

        report = service.index(
            list(folders) or None, progress=progress, cancel=cancel, batch_size=batch_size, workers=workers, ocr_progress=reading_text
        )
    finish(report, as_json)


def _date(value):
    from ..library.metadata import wall_clock

    return None if value is None else wall_clock(value)


def _utc(seconds: float | None) -> str:
    return "" if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


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
@click.option("--place", help="Taken at a place whose name contains this text (town, region or country).")
@click.option("--min-score", type=float, default=None, help="Leave out results below this similarity.")
@click.option("--all", "show_all", is_flag=True, help="Also show the weaker matches below the model's good-match cut-off.")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--limit", "-n", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--lang", "language", metavar="CODE", help="The query's language for multilingual models (de, fr, zh-Hant, deu_Latn...); default: detected, else your locale.")
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def search_command(query, images, add, subtract, folder, after, before, camera, has_gps, place, min_score, show_all, sort, limit, language, as_json, library_dir, model_name):
    """Find photos matching QUERY: text, image paths, `+`/`-` terms, `2:term` weights, "beach not people".

    Words in quotes (or after text:) are looked for in the text read in the photos:
    'receipt "hornbach"' is the photos that say hornbach, the most receipt-like first."""
    from ..library.query import parse

    terms = parse(query, images, add, subtract)  # a malformed query is refused before the model loads
    if language:
        from ..language import to_flores200

        to_flores200(language)  # a mistyped code is refused whatever the model
    encoder = embedding_early(model_name, terms, language or None)
    from ..library.search import Filters
    from ..services.records import SearchRequest

    in_text = any(t.kind == "written" for t in terms)
    request = SearchRequest(
        text=query or "",
        images=list(images),
        add=list(add),
        subtract=list(subtract),
        filters=Filters(folder, _date(after), _date(before), camera, has_gps, place=place or None),
        min_score=min_score,
        sort=sort,
        limit=limit,
        language=language or None,
    )
    with open_service(library_dir, model_name, encoder=encoder) as service:
        result = service.search(request)
        text_unread = in_text and not result.items and not service.ocr_enabled()
    shown = result.items if show_all else result.items[: result.good]
    if as_json:
        rows = [
            {"rank": rank, "score": round(it.score, 4), "path": json_path(it.path), "date": _utc(it.date), "place": it.place,
             "good": rank <= result.good}
            for rank, it in enumerate(shown, 1)
        ]  # fmt: skip
        for row, it in zip(rows, shown):
            if it.text_matches:
                row["text"] = [
                    {"line": m.text, "words": [list(span) for span in m.spans], "box": _corners(m.box),
                     "word_boxes": [_corners(box) for box in m.word_boxes]}
                    for m in it.text_matches
                ]  # fmt: skip
        click.echo(json.dumps(rows))
        return
    if not result.items:
        click.echo("no matching photos" + (" (this library does not read the text in photos: `pixfind index --ocr` turns it on)" if text_unread else ""))
        return
    if result.good == 0:
        click.echo(f"no good match for this query; {_weaker(result.weaker)}" + ("" if show_all else " (--all shows them)"))
        if not show_all:
            return
    click.echo(f"{'rank':>4}  {'score':<5}  {'date':<19}  path")
    for rank, it in enumerate(shown, 1):
        if rank == result.good + 1:
            click.echo(f"— {_weaker(result.weaker)} —")
        click.echo(f"{rank:>4}  {it.score:.3f}  {_utc(it.date):<19}  {printable(it.path)}")
        for m in it.text_matches[:MATCHED_LINES]:
            click.echo(f"{'':>4}  {'':<5}  {'':<19}  “{printable(m.text)}”")
    if not show_all and result.weaker:
        click.echo(f"({_weaker(result.weaker)} below the cut-off {result.cutoff:.3f}; --all shows them)", err=True)


def _corners(box) -> list[list[float]]:
    return [[round(x, 4), round(y, 4)] for x, y in box]


def _weaker(n: int) -> str:
    return f"{n} weaker match" + ("" if n == 1 else "es")


@click.command("duplicates")
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=None,
    help="Similarity at which photos count as duplicates (default: calibrated for the model, else 0.95).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def duplicates_command(threshold, as_json, library_dir, model_name):
    """Groups of near-duplicate photos, largest groups first."""
    with open_service(library_dir, model_name) as service:
        default, about = service.duplicate_threshold(), service.describe_calibration()
        groups = service.duplicates(threshold)
    if as_json:
        data = [
            [{"path": json_path(m.item.path), "similarity": round(m.similarity, 4), "hash_distance": m.hash_distance,
              "trash": m.suggest_trash} for m in g.members]
            for g in groups
        ]  # fmt: skip
        click.echo(json.dumps(data))
        return
    used = default if threshold is None else threshold
    click.echo(f"similarity {used:.3f}" + (" (the model's default; " if threshold is None else " (") + f"model {about})", err=True)
    if not groups:
        click.echo("no near-duplicates found")
    for i, group in enumerate(groups, 1):
        sure = "" if group.confident else ", not certain: nothing suggested for the trash"
        click.echo(f"group {i} ({len(group.members)} photos{sure})")
        for j, m in enumerate(group.members):
            mark = "keep " if j == 0 else ("trash" if m.suggest_trash else "     ")
            click.echo(f"  {mark}  {m.similarity:.3f}  {printable(m.item.path)}")


def _status_json(st, errors: bool) -> dict:
    if st.active is not None:
        active = {"name": st.active.name, "key": st.active.key, "embedded": st.active.embedded, "index": st.active.index}
        recall = getattr(st.active, "recall", None)
        if recall is not None:
            active["index_recall"] = recall  # {"recall", "k", "ef", "M", "measured_at", "target"}
        if st.problem:
            active["problem"] = st.problem  # the active model's pack is damaged
    else:
        active = {"problem": st.problem}
    data = {
        "library": st.library,
        "folders": [{"path": json_path(f.path), "photos": f.photos, "present": f.present} for f in st.folders],
        "photos": st.photos,
        "models": st.models,
        "active_model": active,
        "skipped": len(st.skipped),
        "ocr": None if st.text_read is None else {"read": st.text_read[0], "photos": st.text_read[1]},
    }
    if errors:
        data["errors"] = [{"path": json_path(s.path), "reason": s.reason} for s in st.skipped]
    return data


@click.command("status")
@click.option("--errors", is_flag=True, help="List the files that could not be indexed and why.")
@click.option("--json", "as_json", is_flag=True)
@library_option
@model_option
def status_command(errors, as_json, library_dir, model_name):
    """Folders, photo counts, the active model, skipped files and index health."""
    with open_service(library_dir, model=False) as service:
        st = service.status(model_name)
    if as_json:
        click.echo(json.dumps(_status_json(st, errors)))
        return
    click.echo(f"library: {printable(st.library)}")
    for f in st.folders:
        click.echo(f"  {printable(f.path)}: {f.photos} photos" + ("" if f.present else " (folder not found)"))
    click.echo(f"photos: {st.photos}")
    if st.active is None:
        click.echo(f"active model: none ({printable(st.problem or '')})")
    else:
        click.echo(f"active model: {st.active.name}: {st.active.embedded} of {st.photos} photos encoded")
        click.echo(f"vector index: {printable(st.active.index)}")
        if st.problem:
            click.echo(f"model pack: damaged: {printable(st.problem)}")
    for key, n in st.models.items():
        if st.active is None or key != st.active.key:
            click.echo(f"other model {key}: {n} photos encoded")
    if st.text_read is None:
        click.echo("text in photos: not read (OCR is off; `pixfind index --ocr` turns it on)")
    else:
        click.echo(f"text in photos: read in {st.text_read[0]:,} of {st.text_read[1]:,} photos")
    click.echo(f"skipped files: {len(st.skipped)}" + ("" if errors or not st.skipped else " (list them with --errors)"))
    if errors:
        for s in st.skipped:
            click.echo(f"  {printable(s.path)}: {printable(s.reason)}")


@click.command("watch")
@click.option("--settle", type=float, default=1.0, show_default=True, help="Seconds of quiet before re-indexing.")
@library_option
@model_option
def watch_command(settle, library_dir, model_name):
    """Keep the library current while running: re-index whenever its folders change."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    from ..services.records import describe_report

    def on_report(report):
        click.echo(describe_report(report))
        sys.stdout.flush()

    with open_service(library_dir, model_name) as service:
        folders = [f for f in service.folders() if f.present]
        if folders:
            click.echo(f"watching {len(folders)} folders; Ctrl-C to stop")
            sys.stdout.flush()
        try:
            service.watch(stop, on_report, settle)
        except KeyboardInterrupt:
            pass


COMMANDS = [index_command, search_command, duplicates_command, status_command, watch_command]
