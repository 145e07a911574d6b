"""The language of the words typed, for multilingual models that are told it (NLLB-CLIP's language token).

A combo next to the search field: "Automatic" (the language detected from the words, else the
system's) and the languages the model's tokenizer has a token for, by their English and their own
names (Qt's CLDR data), typed into to filter them. Shown only while the model takes a language;
the choice is kept in the window's settings.
"""

from __future__ import annotations

from functools import cmp_to_key

from PySide6.QtCore import QCollator, QLocale, QSize, Qt, Signal
from PySide6.QtWidgets import QComboBox, QCompleter, QSizePolicy

from ..errors import PixfindError
from ..language import ISO639_1_TO_FLORES200, to_flores200

AUTOMATIC = "Automatic (detect from the words)"
SETTING = "search_language"  # a FLORES-200 code, or "" for automatic

#: NLLB languages Qt has no name for, as the FLORES-200 list names them.
_NAMES = {
    "ace_Arab": "Acehnese (Arabic script)", "ace_Latn": "Acehnese (Latin script)", "acm_Arab": "Mesopotamian Arabic",
    "acq_Arab": "Ta'izzi-Adeni Arabic", "aeb_Arab": "Tunisian Arabic", "ajp_Arab": "South Levantine Arabic",
    "apc_Arab": "North Levantine Arabic", "ars_Arab": "Najdi Arabic", "ary_Arab": "Moroccan Arabic",
    "arz_Arab": "Egyptian Arabic", "awa_Deva": "Awadhi", "azb_Arab": "South Azerbaijani",
    "bjn_Arab": "Banjar (Arabic script)", "bjn_Latn": "Banjar (Latin script)", "cjk_Latn": "Chokwe",
    "crh_Latn": "Crimean Tatar", "dik_Latn": "Southwestern Dinka", "dyu_Latn": "Dyula", "fon_Latn": "Fon",
    "hne_Deva": "Chhattisgarhi", "ilo_Latn": "Ilocano", "kac_Latn": "Jingpho", "knc_Arab": "Central Kanuri (Arabic script)",
    "kbp_Latn": "Kabiyè", "kmb_Latn": "Kimbundu", "lmo_Latn": "Lombard", "ltg_Latn": "Latgalian",
    "lua_Latn": "Luba-Kasai", "lus_Latn": "Mizo", "mag_Deva": "Magahi", "min_Latn": "Minangkabau",
    "mos_Latn": "Mossi", "pag_Latn": "Pangasinan", "prs_Arab": "Dari", "taq_Latn": "Tamasheq (Latin script)",
    "taq_Tfng": "Tamasheq (Tifinagh script)", "tum_Latn": "Tumbuka", "twi_Latn": "Twi", "umb_Latn": "Umbundu",
    "war_Latn": "Waray",
}  # fmt: skip
#: Qt names the likeliest region's variety for these ("American English", "español de España").
_OWN_NAMES = {"eng_Latn": "English", "spa_Latn": "español"}
_ISO639_1 = {}
for _iso, _flores in ISO639_1_TO_FLORES200.items():
    _ISO639_1.setdefault(_flores, _iso)


def _names(code: str) -> tuple[str, str, str]:
    """(English name, own name or "", script name) of a FLORES-200 code."""
    language = QLocale.codeToLanguage(_ISO639_1.get(code, code[:3]))
    script = QLocale.codeToScript(code[4:])
    script_name = QLocale.scriptToString(script)
    if code in _NAMES or language in (QLocale.AnyLanguage, QLocale.C):
        return _NAMES.get(code, code), "", script_name
    locale = QLocale(language, script, QLocale.AnyTerritory)
    own = _OWN_NAMES.get(code) or (locale.nativeLanguageName() if locale.language() == language else "")
    return QLocale.languageToString(language), own, script_name


def language_labels(codes) -> list[tuple[str, str]]:
    """(label, FLORES-200 code) for these languages, by English name: "German — Deutsch"; a name
    two scripts share gets its script ("Kashmiri (Arabic) — کٲشُر")."""
    names = {code: _names(code) for code in dict.fromkeys(codes)}
    counts: dict[str, int] = {}
    for english, _, _ in names.values():
        counts[english] = counts.get(english, 0) + 1
    labels = []
    for code, (english, own, script) in names.items():
        label = f"{english} ({script})" if counts[english] > 1 else english
        if own and own.casefold() != english.casefold():
            label += f" — {own}"
        labels.append((label, code))
    collator = QCollator(QLocale(QLocale.English))  # "Māori" between "Malay" and "Marathi"
    collator.setCaseSensitivity(Qt.CaseInsensitive)
    return sorted(labels, key=cmp_to_key(lambda a, b: collator.compare(a[0], b[0])))


def stored_language(settings) -> str | None:
    """The language kept in the settings (a file a user can edit: checked), None for automatic."""
    value = settings.value(SETTING, "")
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_flores200(value)
    except PixfindError:
        return None


class LanguageChoice(QComboBox):
    """ "Automatic" or one of the model's languages; type to filter the list."""

    changed = Signal()  # the user chose another language
    offered = Signal()  # the model's languages are in (or the choice hidden: a model that takes none)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("searchLanguage")
        self.setAccessibleName("Search language")
        self.setToolTip(
            "The language of the words you search with, for this multilingual model.\n"
            "Automatic detects it from the words (else your system's language). Type to find a language."
        )
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.NoInsert)
        self.lineEdit().setPlaceholderText("Search language")
        completer = QCompleter(self.model(), self)
        completer.setFilterMode(Qt.MatchContains)  # "deu" finds "German — Deutsch"
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setCompletionMode(QCompleter.PopupCompletion)
        completer.setMaxVisibleItems(12)
        self.setCompleter(completer)
        self.setMaxVisibleItems(20)
        self.setMinimumContentsLength(24)
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)  # gives way in a narrow window
        self.activated.connect(self._chosen)
        self.currentIndexChanged.connect(lambda _: self.lineEdit().setCursorPosition(0))  # a long name shows its start
        self.lineEdit().editingFinished.connect(self._show_current)
        self.addItem(AUTOMATIC, "")
        self._shown = ""  # the code searches use, "" for automatic
        self.hide()

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()  # as wide as 24 characters: what it asks for, not what it needs
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("Automatic") + 40), hint.height())

    def language(self) -> str | None:
        """The FLORES-200 code chosen; None for automatic or a model that takes no language."""
        return (self.currentData() or None) if not self.isHidden() else None

    def set_languages(self, codes: list[str] | None) -> None:
        """Offer these languages (the model's), the stored choice selected; None hides the combo."""
        self.blockSignals(True)
        self.clear()
        self.addItem(AUTOMATIC, "")
        for label, code in language_labels(codes or []):
            self.addItem(label, code)
            self.setItemData(self.count() - 1, code, Qt.ToolTipRole)
        self.setCurrentIndex(max(0, self.findData(stored_language(self.settings) or "")))
        self.blockSignals(False)
        self.lineEdit().setCursorPosition(0)
        self._shown = self.currentData() or ""
        self.view().setMinimumWidth(self.view().sizeHintForColumn(0) + 24)
        self.setVisible(codes is not None)
        self.offered.emit()

    def _chosen(self, index: int) -> None:
        code = self.itemData(index) or ""
        if code == self._shown:
            return
        self._shown = code
        self.settings.setValue(SETTING, code)
        self.settings.sync()
        self.changed.emit()

    def _show_current(self) -> None:
        """Typed text that names no language goes back to the language chosen."""
        if self.findText(self.currentText(), Qt.MatchFixedString) != self.currentIndex():
            self.setEditText(self.itemText(self.currentIndex()))
        self.lineEdit().setCursorPosition(0)
