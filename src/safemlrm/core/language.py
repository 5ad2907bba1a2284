"""Which language a text is written in, cheaply: letters counted by script, then stopwords for Latin text.

Judges that read one language (the CPU judges read English; the keyword judge reads the languages of
its refusal phrases) use this to return NaN with the reason instead of a confident score on text
they cannot read. No dependency and no model: Unicode ranges decide the script; for Latin-script
text, counts of frequent function words decide between English and ten other languages.

The dominant script is the one with most letters, a CJK character or Hangul syllable counting as
three letters (about one short word). Too few letters, or Latin text with too few function words
(code, a list of names, "OK."), is `und` (undetermined): judges read it as usual.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

UNDETERMINED = "und"
UNREADABLE_LABEL = "unreadable_language"

# script -> (character class, weight of one character)
_SCRIPTS: dict[str, tuple[str, int]] = {
    "latin": ("A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff", 1),
    "han": ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff", 3),
    "kana": ("\u3040-\u30ff\u31f0-\u31ff", 3),
    "hangul": ("\uac00-\ud7af\u1100-\u11ff\u3130-\u318f", 3),
    "cyrillic": ("\u0400-\u04ff", 1),
    "arabic": ("\u0620-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff", 1),
    "hebrew": ("\u05d0-\u05ea", 1),
    "greek": ("\u0370-\u03ff", 1),
    "devanagari": ("\u0904-\u0939\u0958-\u0961", 1),
    "thai": ("\u0e01-\u0e30\u0e40-\u0e46", 1),
}
_SCRIPT_RE = {name: re.compile(f"[{chars}]") for name, (chars, _w) in _SCRIPTS.items()}
# the language a script stands for when no finer test applies
_SCRIPT_LANGUAGE = {
    "han": "zh",
    "hangul": "ko",
    "arabic": "ar",
    "hebrew": "he",
    "greek": "el",
    "devanagari": "hi",
    "thai": "th",
}
_UKRAINIAN = re.compile("[\u0456\u0457\u0454\u0491\u0406\u0407\u0404\u0490]")  # і ї є ґ

MIN_LETTERS = 8  # fewer (weighted) letters than this: undetermined
MIN_STOPWORDS = 2  # Latin text with fewer distinct function words than this: undetermined
STOPWORD_WINDOW = 400  # words read for the stopword count
SCAN_CHARS = 2_400  # a longer text is judged on 8 slices of 300 characters spread over it
SCAN_SLICES = 8

# Frequent function words, chosen to tell the languages apart (words shared by several are kept out
# where they would tip the balance, e.g. "de", "la", "que").
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and is are was were to of that this it you with for not be have has can will your how what "
        "which would there their they from or but if an do does should i me my we"
    ),
    "es": _words(
        "el los las y es por para con una del su al lo como más pero esta este puede muy también sobre hay "
        "cuando son tiene ser sus"
    ),
    "fr": _words(
        "le les et est une des du qui pas ne pour dans sur avec ce cette il vous je nous sont mais être "
        "au aux ou leur peut"
    ),
    "de": _words(
        "der die das und ist nicht ein eine zu den dem mit sich des auf für im sie ich wir sind auch wie "
        "oder aber kann werden wird"
    ),
    "pt": _words(
        "o os e é um uma do da dos das não em no na com para por mais mas ao isso você são ser pode também"
    ),
    "it": _words(
        "il gli e è un di della che non per sono come ma anche questo questa si nel essere può molto alla delle"
    ),
    "nl": _words("het een en van is niet dat op te voor met zijn ik je maar ook wat er wordt kan naar"),
    "id": _words("yang dan di ini itu dengan untuk tidak dari dalam akan saya anda ada bisa atau"),
    "tr": _words("ve bir bu için ile değil çok olarak gibi daha ben sen ama veya olan"),
    "vi": _words("và của là có không được cho này những các một tôi bạn với trong để"),
    "pl": _words("w nie się na że z do jest jak ale po co tak być jestem może"),
}
# Cyrillic: Russian against Ukrainian (words spelt differently in the two)
CYRILLIC_STOPWORDS: dict[str, frozenset[str]] = {
    "ru": _words("и что это как но мы вы они его она было был если или все также может могу помочь этим"),
    "uk": _words("і й що це але ми ви вони його вона було був якщо або всі також може можу допомогти цим"),
}


def _index(table: dict[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    for lang, words in table.items():
        for word in words:
            index[word] = (*index.get(word, ()), lang)
    return index


_WORD_LANGUAGES = _index(STOPWORDS)
_CYRILLIC_WORDS = _index(CYRILLIC_STOPWORDS)
_WORD = re.compile(r"[^\W\d_]+")
_ASCII_NON_LETTERS = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalpha()))


@dataclass(frozen=True)
class Language:
    """A detection: the language code, the dominant script and the share of letters in it."""

    code: str
    script: str
    share: float


def _scan_window(text: str) -> str:
    if len(text) <= SCAN_CHARS:
        return text
    size = SCAN_CHARS // SCAN_SLICES
    step = (len(text) - size) / (SCAN_SLICES - 1)
    return "\n".join(text[round(i * step) : round(i * step) + size] for i in range(SCAN_SLICES))


def _by_stopwords(text: str, index: dict[str, tuple[str, ...]], first: str) -> str:
    """The language with most function words (`first` wins ties), or undetermined with too few."""
    words = _WORD.findall(text.lower())[:STOPWORD_WINDOW]
    counts: dict[str, int] = {}
    distinct: dict[str, set[str]] = {}
    for word in words:
        for lang in index.get(word, ()):
            counts[lang] = counts.get(lang, 0) + 1
            distinct.setdefault(lang, set()).add(word)
    if not counts:
        return UNDETERMINED
    best = max(counts, key=lambda lang: (counts[lang], lang == first))
    if len(distinct[best]) < MIN_STOPWORDS:  # distinct words: code repeats `os`
        return UNDETERMINED
    return best


def detect_language(text: str) -> Language:
    """The language of `text`: an ISO 639-1 code, or `und` when there is too little to tell."""
    window = _scan_window(text)
    if window.isascii():  # the common case, and fast to tell
        weights = dict.fromkeys(_SCRIPTS, 0)
        weights["latin"] = len(window.translate(_ASCII_NON_LETTERS))
    else:
        weights = {name: len(_SCRIPT_RE[name].findall(window)) * _SCRIPTS[name][1] for name in _SCRIPTS}
    total = sum(weights.values())
    if total < MIN_LETTERS:
        return Language(UNDETERMINED, "", 0.0)
    if weights["kana"]:  # Japanese mixes kana with Han characters
        weights["kana"] += weights["han"]
        weights["han"] = 0
    script = max(weights, key=lambda name: (weights[name], name == "latin"))
    share = weights[script] / total
    if script == "latin":
        code = _by_stopwords(window, _WORD_LANGUAGES, "en")
    elif script == "kana":
        code = "ja"
    elif script == "cyrillic":
        code = "uk" if _UKRAINIAN.search(window) else "ru"
        if code == "ru" and _by_stopwords(window, _CYRILLIC_WORDS, "ru") == "uk":
            code = "uk"
    else:
        code = _SCRIPT_LANGUAGE[script]
    return Language(code, script, share)


def unreadable_language(text: str, reads: Collection[str]) -> str | None:
    """The detected language when a judge that reads `reads` cannot read `text`; None when it can."""
    code = detect_language(text).code
    if code == UNDETERMINED or code in reads:
        return None
    return code


def unreadable_rationale(code: str, reads: Collection[str]) -> str:
    return f"unreadable language: {code} (this judge reads {', '.join(sorted(reads))})"
