"""In real Chromium: a manager creates a token on the API tokens page and sees its secret once; the API's
docs page renders every operation from the desk's own files, without breaking its policy."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.api.models import ApiToken
from tests.live import LiveStack
from tests.security.test_browser_security import WAIT_MS, Watched, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_a_manager_creates_a_token_and_reads_the_api_docs(
    live_stack: LiveStack, manager: User, browser: Browser
) -> None:
    base = live_stack.base_url
    tokens = sign_in(browser, base, manager.username, "/api-tokens/")
    tokens.page.locator("#token-name").fill("Our drafting bot")
    tokens.page.locator("#token-scope").select_option("write")
    tokens.page.get_by_role("button", name="Create token").click()
    secret = tokens.page.locator('[data-testid="token-secret"]')
    expect(secret).to_be_visible(timeout=WAIT_MS)
    assert secret.inner_text().startswith("cdk_")
    token = ApiToken.objects.get()
    row = tokens.page.locator('[data-testid="token-row"]')
    expect(row).to_contain_text(f"{token.prefix}…")
    expect(row).to_contain_text("Read and write")
    tokens.assert_clean()

    tokens.page.goto(f"{base}/api-tokens/")
    expect(tokens.page.locator('[data-testid="token-secret"]')).to_have_count(0)  # shown once
    tokens.page.get_by_role("button", name="Revoke").click()
    expect(tokens.page.locator('[data-testid="token-row"]')).to_contain_text("Revoked")

    docs = Watched(browser)
    docs.page.goto(f"{base}/api/v1/docs")
    paths = docs.page.locator(".opblock-summary-path")
    expect(paths.first).to_be_visible(timeout=WAIT_MS)
    shown = set(paths.all_inner_texts())
    assert {"/api/v1/conversations/{public_id}/drafts", "/api/v1/articles/{article_id}"} <= {
        p.replace("\u200b", "") for p in shown
    }
    docs.assert_clean()
