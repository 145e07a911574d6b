"""Runs the searches the search bar asks for and puts their results in the grid.

Every search gets a generation number; a result that comes back after a newer search
started is dropped. The first page is shown at once, the rest of the list is fetched once
the user stops typing and appended without a reset. Good matches come first, the weaker
ones after them (the grid collapses those); sorted by date, the grid shows date sections.
The photo the user is on and the selection survive every update (by photo id), and Enter
in the query field moves into the grid on the first result of that query, once it is in.
"Arrange by similarity" reorders the good matches on a worker thread. Text searches carry the
language chosen next to the field, for the multilingual models that take one.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QItemSelectionModel, QObject, QTimer, Signal

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


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


class SearchController(tasks.TaskOwner, QObject):
    finished = Signal(int)  # a first page is on screen: the number of results shown
    shown = Signal()  # the grid changed: the window picks the page (results or a message)
    failed = Signal(str)

    def __init__(self, service, bar, model, view, count_label, settings, can_search, indexing, parent=None):
        super().__init__(parent)
        self.service, self.bar, self.model, self.view = service, bar, model, view
        self.count_label, self.settings = count_label, settings
        self.can_search = can_search  # () -> bool: a model is loaded (browsing needs none)
        self.indexing = indexing  # () -> "" | "running" | "paused"
        self.enter_generation = 0  # Enter was pressed for this search: move into its results
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
        bar.language_changed.connect(self._language_changed)

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
            language=self.bar.language.language(),
        )

    def model_loaded(self) -> None:
        """Offer the loaded model's languages next to the search field (hidden for a model that takes none)."""
        encoder = self.service.encoder

        def done(codes):
            if self.service.encoder is not encoder or self.closed_for_good:
                return  # another model was loaded meanwhile
            before = self.bar.language.language()
            self.bar.language.set_languages(codes)
            if self.bar.language.language() != before:
                self._language_changed()

        # A tokenizer that cannot be read hides the choice; searching names the problem.
        self._run_task(self.service.query_languages, done=done, failed=lambda _: self.bar.language.set_languages(None))

    def _language_changed(self) -> None:
        if self.bar.search.text().strip():  # browsing and examples alone have no words to tell
            self.run_now()

    def run_now(self) -> None:
        self.debounce.stop()
        self.run()

    def search_now(self) -> None:
        """Enter: search without waiting for the pause in typing and move onto the first result.

        The results on screen may be those of an earlier query: the move happens when this
        query's first page is in (at once when it already is).
        """
        shown = self.request is not None and not self.busy and not self.debounce.isActive()
        if shown and self.current_request() == self.request:
            self.enter_results()
            return
        self.run_now()
        self.enter_generation = self.generation

    def enter_results(self) -> None:
        """Focus the grid with its first photo selected (or, with no good match, the "weaker matches" bar)."""
        if not self.model.rowCount():
            return
        if self.model.good == 0:
            self.view.weak_button.setFocus()
            return
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
        if not keep_view:
            self.view.reset_sections()
        self._replace_keeping_view(result, keep_scroll=keep_view)
        self.shown.emit()
        if self.enter_generation == gen:
            self.enter_generation = 0
            self.enter_results()
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

    def _sections(self, result) -> tuple[int, bool, str]:
        good = min(getattr(result, "good", len(result.items)), len(result.items))
        return good, result.browse or result.request.sort == "date", result.request.text.strip()

    def _replace_keeping_view(self, result, keep_scroll: bool = True) -> None:
        """Show ``result``; the selected photos and the current one stay so where they are still shown."""
        items = result.items
        selection = self.view.selectionModel()
        selected = {self.model.items[i.row()].id for i in selection.selectedIndexes() if i.row() < len(self.model.items)}
        current = self.model.item(self.view.currentIndex().row())
        value = self.view.verticalScrollBar().value()
        good, by_date, query = self._sections(result)
        self.model.date_sections, self.model.query = by_date, query
        self.model.set_items(items, good)
        rows = {it.id: row for row, it in enumerate(items)} if (selected or current) else {}
        for pid in selected:
            if pid in rows:
                selection.select(self.model.index(rows[pid]), QItemSelectionModel.Select)
        if current is not None and current.id in rows:
            selection.setCurrentIndex(self.model.index(rows[current.id]), QItemSelectionModel.NoUpdate)
        elif current is not None and self.view.hasFocus() and good:
            self.view.setCurrentIndex(self.model.index(0))
        if keep_scroll:
            self.view.verticalScrollBar().setValue(value)
        else:
            self.view.verticalScrollBar().setValue(0)

    def _full_list(self, gen: int, result) -> None:
        if gen != self.generation:
            return
        shown = self.model.items
        n = len(shown)
        if len(result.items) >= n and all(a.id == b.id for a, b in zip(shown, result.items[:n])):
            self.model.extend(result.items[n:])
            self.model.set_sections(*self._sections(result))
        else:
            self._replace_keeping_view(result)
        self.last_result = result
        self._show_count(result, complete=True)
        self.maybe_arrange()

    def refresh_count(self) -> None:
        if self.last_result is not None and not self.busy:
            self._show_count(self.last_result, self.last_result.complete)

    def _show_count(self, result, complete: bool) -> None:
        n = len(result.items)
        more = "" if complete else "+"
        good = self._sections(result)[0]
        if result.browse:
            text = f"{n:,}{more} {plural(n, 'photo')}, newest first"
        elif good < n:
            text = f"{good:,} good {plural(good, 'match', 'matches')} · {n - good:,}{more} weaker · {result.seconds * 1000:.0f} ms"
        else:
            text = f"{n:,}{more} {plural(n, 'photo')} · {result.seconds * 1000:.0f} ms"
        state = self.indexing()
        if state == "paused":
            text += " · indexing paused"
        elif state:
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
        items = self.model.items[: min(self.model.good, ARRANGE_LIMIT)]  # the weaker matches stay behind
        if len(items) < 4:
            return
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
