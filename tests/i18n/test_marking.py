"""Every word a person reads in the desk's templates and scripts is marked for translation
(tests/i18n/unmarked.py says how it looks; `python -m tests.i18n.unmarked` lists what is left)."""

from __future__ import annotations

from pathlib import Path

from tests.i18n.unmarked import scripts, templates, unmarked_in_script, unmarked_in_template


def test_every_template_string_is_marked_for_translation() -> None:
    found = [item for path in templates() for item in unmarked_in_template(path)]
    assert found == [], "mark these with {% translate %} or {% blocktranslate %}:\n" + "\n".join(map(str, found))


def test_every_user_facing_script_string_is_marked_for_translation() -> None:
    found = [item for path in scripts() for item in unmarked_in_script(path)]
    assert found == [], "wrap these in gettext() / interpolate():\n" + "\n".join(map(str, found))


def test_the_template_check_finds_unmarked_text_attributes_and_defaults(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '{% load i18n %}<h1>{% translate "Queue" %}</h1>\n'
        "<p>Waiting {{ n }} min</p>\n"
        '<button title="Close it">×</button>\n'
        '{% blocktranslate %}Fine {{ n }}{% endblocktranslate %}<input placeholder="{% translate "Ok" %}">\n'
        '<p>{{ text|default:"(empty)" }}</p><script>var x = "not prose";</script><code>&lt;b&gt;</code>\n',
        encoding="utf-8",
    )
    assert [(line, text) for _, line, text in unmarked_in_template(page)] == [
        (2, "Waiting \u2063 min"),
        (3, "title='Close it'"),
        (5, "\u2063(empty)"),
    ]


def test_the_script_check_finds_unmarked_text_labels_and_notices(tmp_path: Path) -> None:
    script = tmp_path / "page.js"
    script.write_text(
        "var LABELS = { open: gettext('Open'), closed: 'Closed' };\n"
        'node.textContent = ok ? gettext("Fine") : "Not fine";\n'
        'button.setAttribute("aria-label", "Close chat");\n'
        'var b = el("button", { type: "button", title: "Send it" }, "Send");\n'
        'if (state === "open") showError(frame.message || "Something broke");\n'
        'node.className = "a-class"; node.textContent = node.getAttribute("data-when");\n',
        encoding="utf-8",
    )
    assert [(line, text) for _, line, text in unmarked_in_script(script)] == [
        (1, "'Closed'"),
        (2, '"Not fine"'),
        (3, '"Close chat"'),
        (4, '"Send it"'),
        (4, '"Send"'),
        (5, '"Something broke"'),
    ]
