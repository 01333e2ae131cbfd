"""The Simplified Chinese catalogues are complete (nothing untranslated or fuzzy), hold exactly what
makemessages finds in the code now, and the committed .mo files are compiled from them (docs/i18n.md)."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.i18n.catalogues import Entry, entries
from tests.i18n.unmarked import ROOT

MESSAGES = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
DOMAINS = ("django", "djangojs")
# The one command that refreshes the catalogues (docs/i18n.md); here it runs on a copy of the code.
MAKEMESSAGES = ["manage.py", "makemessages", "-l", "zh_Hans", "--add-location=file"]
IGNORED = ["--ignore=tests", "--ignore=bench", "--ignore=staticfiles", "--ignore=static/vendor/*"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_entry_is_translated_and_none_is_fuzzy(domain: str) -> None:
    found = entries(MESSAGES / f"{domain}.po")
    assert found, "the catalogue is empty"
    untranslated = [e.msgid for e in found if not e.obsolete and not all(t.strip() for t in e.translations)]
    fuzzy = [e.msgid for e in found if "fuzzy" in e.flags]
    obsolete = [e.msgid for e in found if e.obsolete]
    assert untranslated == [] and fuzzy == [] and obsolete == []


def _fresh_catalogues(workdir: Path) -> dict[str, list[Entry]]:
    for part in ("manage.py", "chatdesk", "agents", "templates", "static"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, workdir / part, ignore=shutil.ignore_patterns("__pycache__", "vendor"))
        else:
            shutil.copy(source, workdir / part)
    (workdir / "locale").mkdir()
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    for domain in DOMAINS:
        subprocess.run(
            [sys.executable, *MAKEMESSAGES, "-d", domain, *IGNORED],
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
        )
    return {domain: entries(workdir / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po") for domain in DOMAINS}


def test_the_catalogues_hold_exactly_what_makemessages_finds_now(tmp_path: Path) -> None:
    fresh = _fresh_catalogues(tmp_path)
    for domain in DOMAINS:
        wanted = {e.key for e in fresh[domain]}
        held = {e.key for e in entries(MESSAGES / f"{domain}.po") if not e.obsolete}
        assert sorted(wanted - held) == [], f"{domain}.po lacks these: run makemessages and translate them"
        assert sorted(held - wanted) == [], f"{domain}.po holds strings the code no longer has"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_committed_mo_files_are_compiled_from_the_po_files(domain: str, tmp_path: Path) -> None:
    compiled = tmp_path / f"{domain}.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(MESSAGES / f"{domain}.po")], check=True)
    with compiled.open("rb") as fresh, (MESSAGES / f"{domain}.mo").open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
