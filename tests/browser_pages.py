"""Steps the browser tests share: a customer on the shop page, an agent signing in to the desk."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from tests.conftest import PASSWORD


def shop_chat(browser: Browser, base_url: str, *, locale: str | None = None) -> Page:
    """A new customer on the demo shop page, with the chat widget open; `locale`: the browser's language."""
    page = browser.new_context(locale=locale).new_page()
    page.goto(f"{base_url}/")
    page.locator('[data-chatdesk="open"]').click()
    return page


def customer_says(page: Page, text: str) -> None:
    page.locator('[data-chatdesk="input"]').fill(text)
    page.locator('[data-chatdesk="send"]').click()


def agent_desk(browser: Browser, base_url: str, username: str) -> Page:
    """An agent signed in, on the queue."""
    page = browser.new_context().new_page()
    page.goto(f"{base_url}/agents/")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password"]').press("Enter")
    return page
