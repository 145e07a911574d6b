"""The window's status bar: how many results, indexing progress, the active model."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStatusBar, QStyle, QWidget

from .styles import error_colour


class StatusArea:
    def __init__(self, bar: QStatusBar, show_models):
        bar.setSizeGripEnabled(False)
        self.count_label = QLabel()
        self.count_label.setObjectName("count")
        bar.addWidget(self.count_label, 1)
        # Errors: an icon and a clear error colour, never the grey of disabled text.
        self.error_box = QWidget()
        self.error_box.setObjectName("errorBox")
        row = QHBoxLayout(self.error_box)
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(6)
        self.error_icon = QLabel()
        icon = bar.style().standardIcon(QStyle.SP_MessageBoxWarning)
        self.error_icon.setPixmap(icon.pixmap(16, 16))
        self.error_label = QLabel()
        self.error_label.setObjectName("error")
        row.addWidget(self.error_icon)
        row.addWidget(self.error_label)
        self.error_box.hide()
        bar.addWidget(self.error_box, 2)
        self._error_timer = QTimer(bar, singleShot=True, interval=15000)
        self._error_timer.timeout.connect(self.error_box.hide)
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

    def show_error(self, message: str) -> None:
        self.error_label.setStyleSheet(f"color: {error_colour(self.error_label.palette()).name()}; font-weight: 600;")
        self.error_label.setText(message)
        self.error_label.setToolTip(message)
        self.error_box.show()
        self._error_timer.start()

    def indexing_started(self) -> None:
        self.mini_progress.show()
        self.mini_progress.setRange(0, 0)
        self.index_label.setText("Indexing…")

    def indexing_progress(self, p) -> None:
        if p.total:
            self.mini_progress.setRange(0, p.total)
            self.mini_progress.setValue(p.done)
            doing = "Reading text" if getattr(p, "phase", "photos") == "text" else "Indexing"
            self.index_label.setText("Paused" if p.paused else f"{doing} {p.done:,}/{p.total:,}")

    def indexing_stopped(self) -> None:
        self.mini_progress.hide()
        self.index_label.setText("")
