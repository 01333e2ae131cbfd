"""Every HTML page carries the Content-Security-Policy; no template needs inline script to work.
(tests/security/test_browser_security.py checks in Chromium that no page breaks the policy.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.live import ROOT
from tests.security.matrix import MATRIX, build_world


def directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db
def test_every_page_of_the_matrix_has_the_policy() -> None:
    world = build_world()
    visitors = [Client(), Client(), Client()]
    visitors[1].force_login(world.users["manager"])
    visitors[2].force_login(world.users["superuser"])
    pages = 0
    for route in MATRIX:
        url = world.url(route)
        for client in visitors:
            response = client.get(url, HTTP_HOST="localhost")
            assert "Content-Security-Policy" in response, (url, response.status_code)
            policy = directives(response["Content-Security-Policy"])
            assert policy["script-src"] == ["'self'"], url
            assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
            assert "ws://localhost" in policy["connect-src"] and "wss://localhost" in policy["connect-src"]
            pages += response["Content-Type"].startswith("text/html") and response.status_code == 200
    assert pages > 50  # the admin's, the dashboard's, the reports, the shop, the sign-in page


def test_a_bad_host_still_gets_the_policy(settings: object) -> None:
    response = Client().get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=lambda p: p.name)
def test_templates_have_no_inline_script(template: Path) -> None:
    html = template.read_text()
    for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
        assert "src=" in tag, f"{template}: inline <script> (move it to static/js)"
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), f"{template}: inline event handler"
    assert "javascript:" not in html.lower()
