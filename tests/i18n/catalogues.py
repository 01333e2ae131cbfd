"""Reads gettext catalogues (.po) just enough to check them: each entry's msgid, plural, translations
and flags. GNU gettext (msgfmt, xgettext) does the compiling; this only looks."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")\s*$")


@dataclass
class Entry:
    msgid: str
    msgid_plural: str = ""
    msgctxt: str = ""
    translations: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self.msgctxt, self.msgid, self.msgid_plural


def entries(path: Path) -> list[Entry]:
    """Every entry of the catalogue at `path` but its header (the entry with an empty msgid)."""
    found: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        parts: dict[str, str] = {}
        flags: set[str] = set()
        obsolete = False
        current = None
        for line in block.splitlines():
            if line.startswith("#~"):
                obsolete = True
                line = line[2:].strip()
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
                continue
            if line.startswith("#") or not line.strip():
                continue
            matched = _KEYWORD.match(line)
            if matched:
                current = matched.group(1)
                parts[current] = ast.literal_eval(matched.group(2))
            elif current and line.strip().startswith('"'):
                parts[current] += ast.literal_eval(line.strip())
        if "msgid" not in parts or not parts["msgid"]:
            continue
        translations = [parts[k] for k in sorted(parts) if k.startswith("msgstr")]
        found.append(
            Entry(
                msgid=parts["msgid"],
                msgid_plural=parts.get("msgid_plural", ""),
                msgctxt=parts.get("msgctxt", ""),
                translations=translations,
                flags=flags,
                obsolete=obsolete,
            )
        )
    return found
