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


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


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
    return [(_name(path), line, text) for line, text in parser.found]


# ------------------------------------------------------------------------------------------ JavaScript
# String literals and comments of a script (template literals count as strings; regex literals are rare
# in these files and hold no words a person reads).
_JS_TOKEN = re.compile(r"""/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`""", re.S)
_STRING = r"(\"[^\"\n]*\"|'[^'\n]*'|`[^`]*`)"
# A literal that names something (a key, a class, a state) rather than says something: kept as is in
# the masked source so the patterns below can see attribute names.
_NAME_LIKE = re.compile(r"""^["'][\w.:-]*["']$""")
# Where an expression starts whose strings people read: a property or attribute set to it, an element
# built with it as text (el(tag, attrs-or-class, text) in widget.js and agent-common.js).
_READ_ATTRIBUTE = r"(?:aria-label|aria-description|title|placeholder|alt)"
_READ_STARTS = [
    re.compile(r"\.(?:textContent|innerText|placeholder|title|alt|ariaLabel)\s*\+?=\s*"),
    re.compile(r"setAttribute\(\s*[\"']" + _READ_ATTRIBUTE + r"[\"']\s*,\s*"),
    re.compile(r"[\"']?\b" + _READ_ATTRIBUTE + r"[\"']?\s*:\s*"),
    re.compile(r"\bel\(\s*\"[^\"\n]*\"\s*,\s*(?:\{[^{}]*\}|[^,(){}]*(?:\([^()]*\))?[^,(){}]*)\s*,\s*"),
]
# A notice shown with a string: its last argument, or the head of a concatenation there.
_READ_CALL = re.compile(
    r"\b(?:createTextNode|showNotice|showError|showConnection|alert|confirm)\(\s*(?:[^,()]*,\s*)*"
    + r"(?:[^;\n]*?[?:|]\s*)?"
    + _STRING
    + r"(?=\s*[)+])"
)
# Label maps (NAME_LABELS = {...}, NAME_MEANINGS = [...]): every value in them is read by people.
_LABEL_MAP = re.compile(r"\b[A-Z_]*(?:LABELS|MEANINGS|TEXTS|MESSAGES)\s*=\s*([\[{][^\]}]*[\]}])")
# Before a literal that is marked, compared, or a name looked up rather than shown.
_NOT_SHOWN = re.compile(
    r"(?:\b(?:n|p|np)?gettext\(|[=!]==?|\b(?:getAttribute|hasAttribute|querySelector(?:All)?)\()\s*$"
)


def _expression_end(masked: str, start: int) -> int:
    """Where the expression starting at `start` ends: a ; or , or closing bracket at its own depth."""
    depth = 0
    for index in range(start, len(masked)):
        char = masked[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return index
            depth -= 1
        elif char in ";," and depth == 0:
            return index
    return len(masked)


def unmarked_in_script(path: Path) -> list[tuple[str, int, str]]:
    source = path.read_text(encoding="utf-8")
    literals: dict[int, str] = {}
    masked_parts: list[str] = []
    last = 0
    for token in _JS_TOKEN.finditer(source):
        masked_parts.append(source[last : token.start()])
        text = token.group(0)
        if text.startswith(("/*", "//")):
            masked_parts.append(re.sub(r"[^\n]", " ", text))
        else:
            literals[token.start()] = text
            masked_parts.append(text if _NAME_LIKE.match(text) else text[0] + "_" * (len(text) - 2) + text[-1])
        last = token.end()
    masked_parts.append(source[last:])
    masked = "".join(masked_parts)
    starts: list[int] = []
    for pattern in _READ_STARTS:
        for match in pattern.finditer(masked):
            end = _expression_end(masked, match.end())
            starts += [start for start in literals if match.end() <= start < end]
    starts += [match.start(1) for match in _READ_CALL.finditer(masked)]
    for table in _LABEL_MAP.finditer(masked):
        starts += [start for start in literals if table.start(1) <= start < table.end(1)]
    name = _name(path)
    found: dict[int, tuple[str, int, str]] = {}
    for start in starts:
        literal = literals[start]
        if _NOT_SHOWN.search(masked[max(0, start - 20) : start]):
            continue
        if has_words(literal[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")):
            found[start] = (name, source.count("\n", 0, start) + 1, literal)
    return sorted(found.values(), key=lambda item: item[1])


def templates() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.html"))


def scripts() -> list[Path]:
    return sorted(path for path in (ROOT / "static" / "js").rglob("*.js"))


def unmarked() -> list[tuple[str, int, str]]:
    """Every unmarked readable string in the desk's templates and scripts."""
    found = [item for path in templates() for item in unmarked_in_template(path)]
    for path in scripts():
        found += unmarked_in_script(path)
    return found


if __name__ == "__main__":
    for file, line, text in unmarked():
        print(f"{file}:{line}: {text}")
