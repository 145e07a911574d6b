"""Runs the searches the search bar asks for and puts their results in the grid.

Every search gets a generation number; a result that comes back after a newer search
started is dropped. The first page is shown at once, the rest of the list is fetched once
the user stops typing and appended without a reset. "Arrange by similarity" reorders what
is shown on a worker thread.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from ..services import FIRST_PAGE, NothingIndexed, SearchRequest, SearchResult
from ..services.arrange import arrange
from . import tasks

ARRANGE_LIMIT = 1500  # photos laid out by similarity (the rest follow in order)
DEBOUNCE_MS = 180


def search_or_nothing(service, request: SearchRequest, limit: int) -> SearchResult:
    """The service's answer; a library with nothing indexed yet (say, the first pass is running) shows no photos."""
    start = time.perf_counter()
    try:
        return service.search(request, limit)
    except NothingIndexed:
        return SearchResult(request, [], True, time.perf_counter() - start)


class SearchController(tasks.TaskOwner, QObject):
    finished = Signal(int)  # a first page is on screen: the number of results shown
    shown = Signal()  # the grid changed: the window picks the page (results or a message)
    failed = Signal(str)

    def __init__(self, service, bar, model, view, count_label, settings, can_search, indexing, parent=None):
        super().__init__(parent)
        self.service, self.bar, self.model, self.view = service, bar, model, view
        self.count_label, self.settings = count_label, settings
        self.can_search = can_search  # () -> bool: a model is loaded (browsing needs none)
        self.indexing = indexing  # () -> bool
        self.generation = 0
        self.answered = 0  # the generation of the last search that came back (with results or an error)
        self.request: SearchRequest | None = None
        self.last_result = None
        self.search_started_at = 0.0
        self.closed_for_good = False
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.run)
        bar.query_edited.connect(self.debounce.start)
        bar.submitted.connect(self.search_now)
        bar.filters_changed.connect(self.run)
        bar.examples_changed.connect(self.run_now)
        bar.sort_changed.connect(self._sort_changed)
        bar.arrange_toggled.connect(self._arrange_toggled)

    @property
    def busy(self) -> bool:
        """A search is on its way: what is on screen is about to change."""
        return self.answered != self.generation

    def stop(self) -> None:
        """The window closes: drop every result still on its way."""
        self.closed_for_good = True
        self.generation += 1
        self.debounce.stop()

    def current_request(self) -> SearchRequest:
        return SearchRequest(
            text=self.bar.search.text(),
            images=list(self.bar.examples),
            balance=self.bar.balance.value() / 100,
            filters=self.bar.filters(),
            min_score=self.bar.min_score,
            sort=self.bar.sort.currentData(),
            limit=int(self.settings.value("max_results", 10000)),
        )

    def run_now(self) -> None:
        self.debounce.stop()
        self.run()

    def search_now(self) -> None:
        """Enter: search without waiting for the pause in typing and move into the results."""
        self.run_now()
        if self.model.rowCount():
            self.view.setFocus()
            self.view.setCurrentIndex(self.model.index(0))

    def run(self, keep_view: bool = False) -> None:
        request = self.current_request()
        if request.empty:  # browsing the library by date: all of it, however large
            request.limit = int(self.settings.value("max_browse", 1_000_000))
        if not request.empty and not self.can_search():
            return
        self.generation += 1
        gen = self.generation
        self.request = request
        self.search_started_at = time.perf_counter()
        self.bar.show_query_kind(bool(request.text.strip()), bool(request.images))
        self.model.show_scores = not request.empty
        self.count_label.setText("Searching…")
        self._run_task(
            search_or_nothing,
            self.service,
            request,
            FIRST_PAGE,
            done=lambda r: self._first_page(gen, r, keep_view),
            failed=lambda e: self._failed(gen, e),
        )

    # ------------------------------------------------------------------ results coming back

    def _first_page(self, gen: int, result, keep_view: bool) -> None:
        if gen != self.generation:
            return
        self.answered = gen
        self.last_result = result
        if keep_view and self.model.rowCount():
            self._replace_keeping_view(result.items)
        else:
            self.model.set_items(result.items)
            self.view.scrollToTop()
        self.shown.emit()
        self._show_count(result, complete=result.complete)
        self.finished.emit(len(result.items))
        if result.complete:
            self.maybe_arrange()
            return

        def fetch_rest():  # not while the user is still typing: only the query they stop at
            if gen != self.generation or self.closed_for_good:
                return
            self._run_task(
                search_or_nothing,
                self.service,
                result.request,
                result.request.limit,
                done=lambda r: self._full_list(gen, r),
                failed=lambda e: self._failed(gen, e),
            )

        QTimer.singleShot(0 if result.browse else 350, self, fetch_rest)

    def _replace_keeping_view(self, items) -> None:
        selection = self.view.selectionModel()
        selected = {self.model.items[i.row()].id for i in selection.selectedIndexes() if i.row() < len(self.model.items)}
        value = self.view.verticalScrollBar().value()
        self.model.set_items(items)
        if selected:
            for row, it in enumerate(items):
                if it.id in selected:
                    selection.select(self.model.index(row), selection.SelectionFlag.Select)
        self.view.verticalScrollBar().setValue(value)

    def _full_list(self, gen: int, result) -> None:
        if gen != self.generation:
            return
        shown = self.model.items
        n = len(shown)
        if len(result.items) >= n and all(a.id == b.id for a, b in zip(shown, result.items[:n])):
            self.model.extend(result.items[n:])
        else:
            self._replace_keeping_view(result.items)
        self.last_result = result
        self._show_count(result, complete=True)
        self.maybe_arrange()

    def _show_count(self, result, complete: bool) -> None:
        n = len(result.items)
        what = "photo" if n == 1 else "photos"
        if result.browse:
            text = f"{n:,}{'' if complete else '+'} {what}, newest first"
        else:
            text = f"{n:,}{'' if complete else '+'} {what} · {result.seconds * 1000:.0f} ms"
        if self.indexing():
            text += " · indexing goes on, results grow"
        self.count_label.setText(text)

    def _failed(self, gen: int, message: str) -> None:
        if gen != self.generation:
            return
        self.answered = gen
        self.count_label.setText("")
        self.failed.emit(message)

    # ------------------------------------------------------------------ order and arranging

    def _sort_changed(self) -> None:
        if self.bar.sort.currentData() == "date" and self.bar.arrange_button.isChecked():
            self.bar.arrange_button.setChecked(False)
        self.run()

    def _arrange_toggled(self, on: bool) -> None:
        if on and self.bar.sort.currentData() == "date":
            self.bar.set_sort_quietly("relevance")
            self.run()
            return
        if on:
            self.maybe_arrange()
        else:
            self.run(keep_view=False)

    def maybe_arrange(self) -> None:
        if not self.bar.arrange_button.isChecked() or not self.can_search() or self.model.rowCount() < 4:
            return
        gen = self.generation
        items = self.model.items[:ARRANGE_LIMIT]
        columns = self.view.columns()
        service = self.service

        def work():
            import numpy as np

            vectors = service.vectors([it.id for it in items])
            have = [i for i, it in enumerate(items) if it.id in vectors]
            if len(have) < 4:
                return None
            order = arrange(np.stack([vectors[items[i].id] for i in have]), columns)
            return [have[i] for i in order] + [i for i, it in enumerate(items) if it.id not in vectors]

        def done(order):
            if gen != self.generation or order is None:
                return
            n = min(len(items), len(self.model.items))
            self.model.reorder(order + list(range(n, len(self.model.items))))
            self.count_label.setText(self.count_label.text() + " · arranged by similarity")

        self._run_task(work, done=done, failed=self.failed.emit)
