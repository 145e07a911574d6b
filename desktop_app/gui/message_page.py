"""A centred explanation with actions: first run (no model), empty library, no results."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

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
            b.clicked.connect(slot)
            self.buttons.addWidget(b)
            self._buttons.append(b)
        self.buttons.addStretch(1)

    # ------------------------------------------------------------------ the messages the window shows

    def show_welcome(self, import_pack, show_models) -> None:
        self.show_message(
            "Welcome to pixfind",
            "pixfind finds photos on your computer by what they show: type <i>“a dog on a beach”</i> "
            "or drop an example picture. Everything runs on this computer.<br><br>"
            "To start, it needs a <b>model pack</b>, the part that understands pictures and words. "
            "Import one you have (a folder or a .zip), or download one "
            "(about 1 GB; converting it needs pixfind's <i>export</i> extra).<br><br>"
            "<small>From a terminal: <code>pixfind models install starter</code> installs the offline starter model.</small>",
            [("Import a model pack…", import_pack), ("Download a model…", show_models)],
        )

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
            text = "Nothing matches. Try other words, loosen the filters or lower the match slider."
        self.show_message("No photos found", text, [("Clear search and filters", clear_all)])
