"""Small label factories every panel and dialog uses."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel


def heading(text: str, scale: float = 1.15) -> QLabel:
    label = QLabel(text)
    f = label.font()
    f.setPointSizeF(f.pointSizeF() * scale)
    f.setBold(True)
    label.setFont(f)
    return label


def muted(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setEnabled(False)
    return label
