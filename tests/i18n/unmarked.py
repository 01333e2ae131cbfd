"""Finds words a person would read that are not marked for translation: in templates (text and the
attributes people read, outside {% translate %} / {% blocktranslate %}) and in static JavaScript (string
literals put where people read them, outside gettext()/ngettext()/pgettext()).

Each finder returns (file, line, text) for every unmarked string; tests/i18n/test_marking.py asks for none.
Run `python -m tests.i18n.unmarked` to list them while marking new pages.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from django.template.base import Lexer, TokenType

ROOT = Path(__file__).resolve().parents[2]

# Attributes whose value a person reads or hears.
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "aria-placeholder", "label"}
# Elements whose content is not prose: code shown as code, scripts, styles.
NOT_PROSE = {"script", "style", "code", "pre"}
# Blocks that fill an attribute no one reads (a class name), not text.
NOT_PROSE_BLOCKS = {"body_class"}
# Names, not words: the same in every language.
PROPER_NAMES = {"ChatDesk"}
_LETTER = re.compile(r"[^\W\d_]")
_HOLE = "\u2063"  # stands for a {{ variable }} or a translated piece: no letter in it
# A literal a person reads inside a variable: {{ x|default:"(empty)" }} (marked: default:_("(empty)")).
_SHOWN_LITERAL = re.compile(r"\|default(?:_if_none)?:([\"'])(.*?)\1")


def has_words(text: str) -> bool:
    """Whether `text` holds a letter once variables and proper names are taken out."""
    for name in PROPER_NAMES:
        text = text.replace(name, "")
    return bool(_LETTER.search(text.replace(_HOLE, "")))


class _ReadableText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in NOT_PROSE:
            self.skipping.append(tag)
        line = self.getpos()[0]
        for name, value in attrs:
            shown_value = tag == "input" and ("type", "submit") in attrs  # a submit input shows its value
            readable = name in READ_ATTRIBUTES or (name == "value" and shown_value)
            if readable and value and has_words(value):
                self.found.append((line, f"{name}={value!r}"))

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and has_words(data):
            self.found.append((self.getpos()[0], " ".join(data.split())))


def template_source_without_translations(source: str) -> str:
    """The template with every translated piece and variable replaced by a hole, other tags dropped
    (their text stays: {% if %}Yes{% endif %} still shows "Yes"), comments removed; lines are kept."""
    out: list[str] = []
    skip_until: str | None = None
    for token in Lexer(source).tokenize():
        words = token.split_contents() if token.token_type == TokenType.BLOCK else []
        if skip_until is not None:
            if words and words[0] == skip_until:
                skip_until = None
                out.append(_HOLE)
            out.append("\n" * token.contents.count("\n"))
            continue
        if token.token_type == TokenType.TEXT:
            out.append(token.contents)
        elif token.token_type == TokenType.VAR:
            # Kept as text (and so checked) when unmarked; a hole otherwise.
            out.append(_HOLE + " ".join(m.group(2) for m in _SHOWN_LITERAL.finditer(token.contents)))
        elif token.token_type == TokenType.BLOCK:
            if words[0] in ("translate", "trans"):
                out.append(_HOLE)
            elif words[0] in ("blocktranslate", "blocktrans"):
                skip_until = "end" + words[0]
            elif words[0] == "comment":
                skip_until = "endcomment"
            elif words[0] == "block" and len(words) > 1 and words[1] in NOT_PROSE_BLOCKS:
                skip_until = "endblock"
            out.append("\n" * token.contents.count("\n"))
        else:
            out.append("\n" * token.contents.count("\n"))
    return "".join(out)


def unmarked_in_template(path: Path) -> list[tuple[str, int, str]]:
    parser = _ReadableText()
    parser.feed(template_source_without_translations(path.read_text(encoding="utf-8")))
    parser.close()
    name = str(path.relative_to(ROOT))
    return [(name, line, text) for line, text in parser.found]


# ------------------------------------------------------------------------------------------ JavaScript
_JS_STRING = r"(?:\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
# Places whose string a person reads: a property or attribute set to it, an element built with it as text.
_JS_READ = [
    re.compile(r"\.(?:textContent|innerText|placeholder|title|alt|ariaLabel)\s*[+]?=\s*(" + _JS_STRING + ")"),
    re.compile(
        r"setAttribute\(\s*[\"'](?:aria-label|aria-description|title|placeholder|alt)[\"']\s*,\s*(" + _JS_STRING + ")"
    ),
    re.compile(r"[\"'](?:aria-label|aria-description|title|placeholder|alt)[\"']\s*:\s*(" + _JS_STRING + ")"),
    # el(tag, attrs, "text") (widget.js) and helpers taking text last: a literal right before ")".
    re.compile(r"\bel\([^()]*(?:\([^()]*\)[^()]*)*,\s*(" + _JS_STRING + r")\s*\)"),
    re.compile(r"\b(?:alert|confirm|prompt|setStatus|showNotice|announce|notice)\(\s*(" + _JS_STRING + ")"),
    # Ternaries and concatenations feeding one of the above are caught by their first literal; a
    # string of words anywhere else in an assignment to a read property is caught here:
    re.compile(r"\.(?:textContent|innerText|placeholder|title)\s*=\s*[^;\n]*?\?\s*(" + _JS_STRING + ")"),
    re.compile(r"\.(?:textContent|innerText|placeholder|title)\s*=\s*[^;\n]*?:\s*(" + _JS_STRING + ")"),
]
_JS_COMMENT = re.compile(r"/\*.*?\*/|(?<![:\\\"'])//[^\n]*", re.S)


def _blank_comments(source: str) -> str:
    return _JS_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)


def unmarked_in_script(path: Path) -> list[tuple[str, int, str]]:
    source = _blank_comments(path.read_text(encoding="utf-8"))
    name = str(path.relative_to(ROOT))
    found: dict[int, tuple[str, int, str]] = {}
    for pattern in _JS_READ:
        for match in pattern.finditer(source):
            literal = match.group(1)
            start = match.start(1)
            before = source[max(0, start - 30) : start]
            if re.search(r"\b(?:n|p)?gettext\(\s*$", before):
                continue
            if has_words(literal[1:-1].encode().decode("unicode_escape")):
                found[start] = (name, source.count("\n", 0, start) + 1, literal)
    return sorted(found.values(), key=lambda item: item[1])


# Wordings that live in JavaScript as data rather than next to the code that shows them (maps from a
# code to its label): a literal of two or more words as a value of such an object is read by people.
_JS_LABEL_MAP = re.compile(r"^\s*[\"']?[\w-]+[\"']?\s*:\s*(" + _JS_STRING + r")\s*,?\s*$", re.M)


def unmarked_labels_in_script(path: Path) -> list[tuple[str, int, str]]:
    source = _blank_comments(path.read_text(encoding="utf-8"))
    name = str(path.relative_to(ROOT))
    found = []
    for match in _JS_LABEL_MAP.finditer(source):
        text = match.group(1)[1:-1]
        if " " in text.strip() and has_words(text) and not re.search(r"[{};]|^\s*[.#\[]", text):
            found.append((name, source.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return found


def templates() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.html"))


def scripts() -> list[Path]:
    return sorted(path for path in (ROOT / "static" / "js").rglob("*.js"))


def unmarked() -> list[tuple[str, int, str]]:
    """Every unmarked readable string in the desk's templates and scripts."""
    found = [item for path in templates() for item in unmarked_in_template(path)]
    for path in scripts():
        found += unmarked_in_script(path) + unmarked_labels_in_script(path)
    return found


if __name__ == "__main__":
    for file, line, text in unmarked():
        print(f"{file}:{line}: {text}")
