"""The window's status bar: how many results, indexing progress, the active model."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar


class StatusArea:
    def __init__(self, bar: QStatusBar, show_models):
        bar.setSizeGripEnabled(False)
        self.count_label = QLabel()
        self.count_label.setObjectName("count")
        bar.addWidget(self.count_label, 1)
        self.mini_progress = QProgressBar()
        self.mini_progress.setFixedWidth(140)
        self.mini_progress.setFixedHeight(6)
        self.mini_progress.setTextVisible(False)
        self.mini_progress.hide()
        self.index_label = QLabel()
        bar.addPermanentWidget(self.index_label)
        bar.addPermanentWidget(self.mini_progress)
        self.model_button = QPushButton()
        self.model_button.setFlat(True)
        self.model_button.setToolTip("Models (Ctrl+M)")
        self.model_button.clicked.connect(show_models)
        bar.addPermanentWidget(self.model_button)

    def indexing_started(self) -> None:
        self.mini_progress.show()
        self.mini_progress.setRange(0, 0)
        self.index_label.setText("Indexing…")

    def indexing_progress(self, p) -> None:
        if p.total:
            self.mini_progress.setRange(0, p.total)
            self.mini_progress.setValue(p.done)
            self.index_label.setText("Paused" if p.paused else f"Indexing {p.done:,}/{p.total:,}")

    def indexing_stopped(self) -> None:
        self.mini_progress.hide()
        self.index_label.setText("")
