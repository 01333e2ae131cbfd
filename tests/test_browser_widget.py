"""The customer widget in real Chromium as other sites embed it: one script tag on a page of another origin
(set up by its data- attributes, under hostile host styles), on a phone, with the keyboard alone, read by
assistive technology (ARIA roles), and offline (messages kept and sent once when back).

The other origin is http://127.0.0.2:<port>, a host the desk's ALLOWED_HOSTS do not name: a widget site lists it
(WidgetSite.origins), which is what lets it in. The pages talk to a Daphne of their own (beside the live stack's, on
the same database, Redis and worker, without WIDGET_ALLOWED_ORIGINS), started after the session's earlier tests so
that no origins it cached before the site existed keep the page out (chatdesk.widget_sites.websocket).
"""

from __future__ import annotations

import html
import http.server
import json
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Locator, Page, WebSocketRoute, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from chatdesk.conversations import identity, presence, services
from chatdesk.conversations.models import Conversation, Draft, Message
from chatdesk.widget_sites.models import WidgetSite
from chatdesk.widget_sites.services import site_create
from tests.live import LiveStack, free_port, poll_until

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
SHOP_HOST = "127.0.0.2"  # loopback, but another origin than the desk's 127.0.0.1 and not in ALLOWED_HOSTS

# A host page that styles everything it can reach as badly as it can.
HOSTILE_CSS = """
html, body { font: 40px/3 "Comic Sans MS", cursive; color: red; letter-spacing: 6px; text-transform: uppercase; }
* { color: red !important; font-size: 40px !important; line-height: 3 !important; box-sizing: content-box !important; }
button, textarea, input, form, section, ol, li, header, p { display: none !important; }
div { display: none !important; opacity: 0 !important; transform: scale(0) !important; visibility: hidden !important; }
[data-chatdesk-widget] { width: 5000px !important; height: 5000px !important; pointer-events: none !important; }
"""


class ShopServer(http.server.ThreadingHTTPServer):
    pages: dict[str, str]


class ShopPages(http.server.BaseHTTPRequestHandler):
    """Serves the pages a test put in the server's `pages`, by path."""

    server: ShopServer

    def do_GET(self) -> None:
        body = self.server.pages.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is for failures."""


@dataclass
class Shop:
    """Another site (its own origin) and a Daphne of the desk's for its pages."""

    origin: str
    desk: LiveStack
    server: ShopServer

    def page(self, path: str, attributes: dict[str, str], *, css: str = "", body: str = "") -> str:
        """Put a page at `path` embedding the widget with these data- attributes; its URL."""
        tag_attributes = "".join(f' {name}="{html.escape(value)}"' for name, value in attributes.items())
        self.server.pages[path] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Another shop</title><style>{css}</style></head><body><h1>Another shop</h1>{body}"
            f'<script src="{self.desk.base_url}/static/js/widget.js"{tag_attributes} defer></script></body></html>'
        )
        return f"{self.origin}{path}"


@pytest.fixture(scope="module")
def shop_desk(live_stack: LiveStack) -> Iterator[Shop]:
    """The other site's server and the desk's Daphne for it; no widget site lists its origin yet."""
    server = ShopServer((SHOP_HOST, 0), ShopPages)
    server.pages = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://{SHOP_HOST}:{server.server_address[1]}"
    port = free_port()
    desk = LiveStack(
        base_url=f"http://127.0.0.1:{port}",
        log_dir=Path(tempfile.mkdtemp(prefix="chatdesk-widget-")),
        env=live_stack.env,
        port=port,
    )
    desk.start_daphne()
    try:
        yield Shop(origin=origin, desk=desk, server=server)
    finally:
        desk.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop(shop_desk: Shop, transactional_db: None) -> Shop:
    """The other site, which a widget site lists (the database is emptied after every test of this module)."""
    WidgetSite.objects.create(name="Shop", origins=[shop_desk.origin])
    return shop_desk


class SentFrames:
    """The frames the page sent on its websockets, decoded."""

    def __init__(self, page: Page) -> None:
        self.frames: list[dict[str, Any]] = []
        page.on("websocket", lambda ws: ws.on("framesent", self._keep))

    def _keep(self, payload: str | bytes) -> None:
        self.frames.append(json.loads(payload))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame.get("type") == kind]


def widget(page: Page, name: str) -> Locator:
    return page.locator(f'[data-chatdesk="{name}"]')


def customer_message(page: Page, text: str) -> Locator:
    return page.locator('[data-chatdesk="message"][data-sender="customer"]', has_text=text)


def type_and_send(page: Page, text: str) -> None:
    widget(page, "input").fill(text)
    widget(page, "input").press("Enter")


def approve_when_ready(agent: User) -> None:
    """The agent approves the worker's draft of the one conversation, as the desk's Approve button does."""
    poll_until(lambda: Draft.objects.filter(status=Draft.Status.READY).exists(), 60, "a draft is ready")
    draft = Draft.objects.get(status=Draft.Status.READY)
    services.draft_approve(public_id=draft.conversation.public_id, draft_id=draft.pk, agent=agent)


def in_widget(page: Page, script: str) -> Any:
    """Evaluate `script` (a function of the widget's shadow root) in the page."""
    return page.evaluate(f"({script})(document.querySelector('[data-chatdesk-widget]').shadowRoot)")


def test_a_page_of_another_origin_embeds_the_widget_with_its_settings_under_hostile_styles_and_chats(
    shop_desk: Shop, knowledge: None, agent: User, manager: User, browser: Browser
) -> None:
    # The manager adds the host site with its origin, which alone lets its pages in; its backend signs who its
    # signed-in customer is (docs/identity.md); the desk shows them as verified.
    shop = shop_desk
    site = site_create(name="Another shop", origins=f"{shop.origin}/", by=manager)
    assert site.origins == [shop.origin]
    signature = identity.sign(site.secret, account_id="c-42", email="ann@example.com", name="Ann Example")
    url = shop.page(
        "/hostile",
        {
            "data-color": "#0a7d3b",
            "data-position": "left",
            "data-language": "zh-CN",
            "data-greeting": "<b>Hi!</b> Ask the Another shop team.",
            "data-site": site.public_key,
            "data-customer-id": "c-42",
            "data-customer-name": "Ann Example",
            "data-customer-email": "ann@example.com",
            "data-customer-signature": signature,
        },
        css=HOSTILE_CSS,
    )
    page = browser.new_context().new_page()
    sent = SentFrames(page)
    page.goto(url)
    launcher = widget(page, "open")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box is not None and box["x"] < 100, "data-position=left puts the launcher on the left"
    launcher.click()

    input_style = in_widget(
        page,
        "r => { const s = getComputedStyle(r.querySelector('[data-chatdesk=input]'));"
        " return [s.fontSize, s.color, s.lineHeight, s.textTransform]; }",
    )
    assert input_style[0] == "15px" and input_style[1] == "rgb(29, 36, 51)", input_style  # nothing of the host's
    assert input_style[3] == "none"
    header_colour = in_widget(page, "r => getComputedStyle(r.querySelector('.head')).backgroundColor")
    assert header_colour == "rgb(10, 125, 59)"  # data-color
    expect(widget(page, "send")).to_have_text("\u53d1\u9001")  # the wording catalogue, read cross-origin
    greeting = widget(page, "greeting")
    expect(greeting).to_have_text("<b>Hi!</b> Ask the Another shop team.")  # text, never markup
    assert in_widget(page, "r => r.querySelector('[data-chatdesk=greeting] b')") is None

    type_and_send(page, "How do I reset my password?")
    expect(customer_message(page, "How do I reset my password?")).to_have_attribute("data-seq", "1", timeout=WAIT_MS)
    expect(greeting).to_be_hidden()
    hello = sent.of_type("hello")[0]
    assert hello["site"] == site.public_key
    assert hello["customer"] == {
        "id": "c-42",
        "name": "Ann Example",
        "email": "ann@example.com",
        "signature": signature,
    }
    assert hello["page"] == url
    assert hello["language"] == "zh-CN"

    approve_when_ready(agent)
    reply = page.locator('[data-chatdesk="message"][data-sender="agent"]')
    expect(reply).to_contain_text("Account > Security", timeout=WAIT_MS)
    assert Conversation.objects.count() == 1
    stored = Conversation.objects.get()
    assert (stored.customer_verified, stored.customer_name, stored.page_url) == (True, "Ann Example", url)

    # An origin no site lists is refused.
    unlisted = shop.origin.replace(SHOP_HOST, "127.0.0.3")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"{shop.desk.ws_url}/ws/chat/", origin=unlisted, open_timeout=10)
    assert refused.value.response.status_code == 403


def visible_controls(page: Page) -> list[list[Any]]:
    """[name, width, height] of every button, input and text box the widget shows now."""
    return in_widget(
        page,
        "r => Array.from(r.querySelectorAll('button, input, textarea'))"
        ".filter(n => n.getClientRects().length)"
        ".map(n => { const b = n.getBoundingClientRect();"
        " return [n.getAttribute('data-chatdesk') || n.className || n.tagName, b.width, b.height]; })",
    )


def test_on_a_phone_nothing_scrolls_sideways_and_every_control_is_a_44_pixel_target(
    shop: Shop, browser: Browser
) -> None:
    url = shop.page("/phone", {"data-color": "#ffd400"})  # a light accent: dark text on it
    context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sent = SentFrames(page)
    page.goto(url)
    widget(page, "open").tap()
    expect(widget(page, "human")).to_be_visible()
    targets = visible_controls(page)  # launcher, close, input, send, talk to a person
    # Asking for a person in words, with nobody at the desk: no draft, an e-mail address is asked for.
    type_and_send(page, "I want to talk to a human please. " + "Where is my parcel? " * 10)  # wraps in the panel
    expect(page.locator('[data-chatdesk="message"]').first).to_have_attribute("data-seq", "1", timeout=WAIT_MS)
    expect(widget(page, "email-form")).to_be_visible(timeout=WAIT_MS)
    targets += visible_controls(page)

    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    panel = page.locator("#chatdesk-panel").bounding_box()
    assert panel is not None
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 360
    assert panel["y"] >= 0 and panel["y"] + panel["height"] <= 640
    head = in_widget(
        page, "r => { const s = getComputedStyle(r.querySelector('.head')); return [s.backgroundColor, s.color]; }"
    )
    assert head == ["rgb(255, 212, 0)", "rgb(29, 36, 51)"]

    widget(page, "end").tap()  # closed: the rating form is offered
    expect(widget(page, "rate-form")).to_be_visible(timeout=WAIT_MS)
    history = widget(page, "log").bounding_box()
    assert history is not None and history["height"] >= 150  # still readable beside the rating form
    targets += visible_controls(page)
    assert {"open", "human", "email", "end", "rate-comment"} <= {target[0] for target in targets}
    small = [target for target in targets if target[1] < 44 or target[2] < 44]
    assert small == [], f"touch targets under 44 x 44 px: {small}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    hello = sent.of_type("hello")[0]
    assert "customer" not in hello and "site" not in hello  # no identity attributes, no fields
    assert hello["page"] == url


def test_the_keyboard_alone_opens_sends_and_closes_and_focus_never_leaves_the_host_page_by_itself(
    shop: Shop, agent: User, browser: Browser
) -> None:
    url = shop.page("/keys", {}, body='<label>Search <input id="search"></label>')
    page = browser.new_context().new_page()
    page.goto(url)
    expect(widget(page, "open")).to_be_visible()
    assert page.evaluate("document.activeElement === document.body")  # loading the widget took no focus

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.press("Tab")
    focused = "r => r.activeElement && r.activeElement.getAttribute('data-chatdesk')"
    assert in_widget(page, focused) == "open"
    page.keyboard.press("Enter")
    expect(page.locator("#chatdesk-panel")).to_be_visible()
    assert in_widget(page, focused) == "input"
    page.keyboard.type("Do you ship to Norway?")
    page.keyboard.press("Enter")
    expect(customer_message(page, "Do you ship to Norway?")).to_have_attribute("data-seq", "1", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    expect(page.locator("#chatdesk-panel")).to_be_hidden()
    assert in_widget(page, focused) == "open"
    assert page.evaluate("document.activeElement.hasAttribute('data-chatdesk-widget')")

    # Closed, the panel's controls are out of the tab order: Tab leaves the widget (no trap).
    page.keyboard.press("Tab")
    assert in_widget(page, "r => r.activeElement") is None

    # A reply while the customer types in the host page: the page keeps the focus, the launcher shows it.
    page.locator("#search").focus()
    page.keyboard.type("mug")
    conversation = Conversation.objects.get()
    services.agent_reply(public_id=conversation.public_id, agent=agent, text="Yes, we ship to Norway.")
    expect(page.locator(".unread")).to_be_visible(timeout=WAIT_MS)
    expect(widget(page, "notice")).to_have_text("New message in the chat")  # read out by screen readers
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type(" blue")
    expect(page.locator("#search")).to_have_value("mug blue")


def test_talk_to_a_person_pressed_from_the_keyboard_hands_focus_to_the_message_box_when_it_goes(
    shop: Shop, agent: User, browser: Browser
) -> None:
    presence.socket_opened(agent, "keyboard-test-dashboard")  # an agent is at the desk: a person is coming
    page = browser.new_context().new_page()
    page.goto(shop.page("/person", {}))
    widget(page, "open").click()
    widget(page, "human").focus()
    page.keyboard.press("Enter")
    expect(widget(page, "human")).to_be_hidden(timeout=WAIT_MS)  # asking again would change nothing
    assert in_widget(page, "r => r.activeElement && r.activeElement.getAttribute('data-chatdesk')") == "input"


def test_the_history_is_a_log_changes_are_status_messages_and_errors_alerts(shop: Shop, browser: Browser) -> None:
    page = browser.new_context().new_page()
    page.goto(shop.page("/aria", {"data-color": "red; } * { display: none"}))  # not a colour: the default one
    widget(page, "open").click()
    assert in_widget(page, "r => getComputedStyle(r.querySelector('.head')).backgroundColor") == "rgb(36, 83, 209)"
    log = page.get_by_role("log", name="Messages")
    expect(log).to_have_attribute("aria-live", "polite")
    type_and_send(page, "Is the lamp dimmable?")
    expect(log.get_by_role("listitem")).to_have_count(1, timeout=WAIT_MS)
    expect(widget(page, "status")).to_have_role("status")
    expect(widget(page, "status")).not_to_have_text("", timeout=WAIT_MS)  # "reviewing", then maybe "no one"
    expect(widget(page, "connection")).to_have_role("status")
    widget(page, "send").click()  # nothing typed
    expect(page.get_by_role("alert")).to_contain_text("type a message")


def test_messages_typed_offline_wait_as_pending_and_are_stored_once_when_back(shop: Shop, browser: Browser) -> None:
    context: BrowserContext = browser.new_context()
    page = context.new_page()
    sent = SentFrames(page)
    page.goto(shop.page("/offline", {}))
    widget(page, "open").click()
    type_and_send(page, "First, while online")
    expect(customer_message(page, "First, while online")).to_have_attribute("data-seq", "1", timeout=WAIT_MS)

    context.set_offline(True)
    expect(widget(page, "connection")).to_contain_text("You are offline", timeout=WAIT_MS)
    type_and_send(page, "Second, typed offline")
    type_and_send(page, "Third, typed offline")
    for text in ("Second, typed offline", "Third, typed offline"):
        expect(customer_message(page, text)).to_have_attribute("data-state", "pending")
        expect(customer_message(page, text)).to_contain_text("when you are back online")
    assert Message.objects.count() == 1

    context.set_offline(False)
    expect(customer_message(page, "Second, typed offline")).to_have_attribute("data-seq", "2", timeout=WAIT_MS)
    expect(customer_message(page, "Third, typed offline")).to_have_attribute("data-seq", "3", timeout=WAIT_MS)
    expect(widget(page, "connection")).to_have_text("")
    assert list(Message.objects.order_by("seq").values_list("text", flat=True)) == [
        "First, while online",
        "Second, typed offline",
        "Third, typed offline",
    ]
    sent_texts = [frame["text"] for frame in sent.of_type("message")]
    assert sent_texts == ["First, while online", "Second, typed offline", "Third, typed offline"]  # each once


def test_a_message_lost_on_the_way_or_left_unacknowledged_is_sent_again_and_stored_once(
    shop: Shop, browser: Browser
) -> None:
    """Delivery stops at the worst moments: the connection drops as the message leaves the page (the desk never
    got it), and as the desk answers (stored, but neither ack nor echo arrives). The widget resends what it
    cannot know was stored, with the same client_id; the desk keeps one of each."""
    from_page: list[dict[str, Any]] = []
    lost: list[str] = []

    def cut(page_side: WebSocketRoute, server_side: WebSocketRoute, what: str) -> None:
        lost.append(what)
        page_side.close()
        server_side.close()

    def route(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            from_page.append(frame)
            if frame.get("text") == "Lost on the way" and "message" not in lost:
                cut(page_side, server_side, "message")
            else:
                server_side.send(message)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            unanswered = [f["client_id"] for f in from_page if f.get("text") == "Stored, answer lost"]
            if frame.get("client_id") in unanswered and "answer" not in lost:  # its ack or its echo
                cut(page_side, server_side, "answer")
            else:
                page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)

    page = browser.new_context().new_page()
    page.route_web_socket(re.compile(r"/ws/chat/$"), route)
    page.goto(shop.page("/drops", {}))
    widget(page, "open").click()
    type_and_send(page, "Hello")
    expect(customer_message(page, "Hello")).to_have_attribute("data-seq", "1", timeout=WAIT_MS)

    type_and_send(page, "Lost on the way")
    expect(customer_message(page, "Lost on the way")).to_have_attribute("data-seq", "2", timeout=WAIT_MS)
    type_and_send(page, "Stored, answer lost")
    expect(customer_message(page, "Stored, answer lost")).to_have_attribute("data-seq", "3", timeout=WAIT_MS)

    assert lost == ["message", "answer"]
    expect(page.locator('[data-chatdesk="message"]')).to_have_count(3)
    assert list(Message.objects.order_by("seq").values_list("text", flat=True)) == [
        "Hello",
        "Lost on the way",
        "Stored, answer lost",
    ]
    resent = [f["client_id"] for f in from_page if f.get("text") == "Lost on the way"]
    assert len(resent) == 2 and resent[0] == resent[1]  # sent again with the same client_id
