"""Generated drafts through the real processes: a thread-pool Celery worker running the `transformers`
engine on a tiny model built here, or the `openai` engine against a local OpenAI-compatible server;
the draft streams into the agent's socket and cites its passages."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.knowledge.models import Article
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.conftest import PASSWORD
from tests.drafting.tiny_models import build_chat_model
from tests.live import Client, LiveStack, login_session, start_live_stack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

THREADS = ["--pool", "threads", "--concurrency", "4"]
PIECE_GAP_S = 0.4
WAIT_MS = 30_000


class ShopModelServer(BaseHTTPRequestHandler):
    """A stand-in for vLLM/TGI: streams an answer that cites the first passage id in the prompt, a
    piece every PIECE_GAP_S seconds (so a browser can watch it form)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = " ".join(m["content"] for m in body["messages"])
        cited = re.search(r"\[(article:\d+)\]", prompt)
        pieces = [
            "You can reset ",
            "your password under ",
            "Account > Security. ",
            f"[{cited.group(1) if cited else ''}]",
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in pieces:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(PIECE_GAP_S)
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ShopModelServer)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture(scope="module", params=["transformers", "openai"])
def generative_stack(
    request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any
) -> Iterator[tuple[str, LiveStack]]:
    engine = request.param
    if engine == "transformers":
        model_dir: Path = tmp_path_factory.mktemp("tiny-chat-model")
        build_chat_model(model_dir)
        env = {"DRAFT_ENGINE": "transformers", "DRAFT_MODEL": str(model_dir), "DRAFT_MAX_NEW_TOKENS": "24"}
    else:
        env = {
            "DRAFT_ENGINE": "openai",
            "DRAFT_OPENAI_BASE_URL": request.getfixturevalue("model_server"),
            "DRAFT_OPENAI_MODEL": "shop-model",
        }
    # Redis keys of its own: the suite's other live worker must not take these drafts.
    prefix = f"{settings.REDIS_PREFIX}-generative"
    with django_db_blocker.unblock():
        stack = start_live_stack({**env, "TORCH_NUM_THREADS": "1", "REDIS_PREFIX": prefix}, pool=THREADS)
    yield engine, stack
    stack.stop()


def test_a_generated_draft_streams_to_the_agent_and_cites_its_passages(
    generative_stack: tuple[str, LiveStack], knowledge: None, agent: User
) -> None:
    engine, stack = generative_stack
    base, ws = stack.base_url, stack.ws_url
    session = login_session(base, agent.username, PASSWORD)
    titles = dict(Article.objects.values_list("id", "title"))

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=session)
        await queue.wait_for(lambda f: f["type"] == "queue")
        customer = await Client.connect(f"{ws}/ws/chat/", origin=base)
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        await customer.send({"type": "message", "client_id": "m-1", "text": "I forgot my password"})
        queued = await queue.wait_for(lambda f: f["type"] == "queue.update" and f["in_queue"], 30)

        watcher = await Client.connect(f"{ws}/ws/agents/conversations/{queued['id']}/", origin=base, session=session)
        final = await watcher.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready", 120)
        draft = final["draft"]
        deltas = [f for f in watcher.frames if f["type"] == "draft.delta" and f["draft_id"] == draft["id"]]
        assert deltas, "the draft was not streamed"
        assert "".join(f["text"] for f in sorted(deltas, key=lambda f: f["offset"])) == draft["text"]
        assert draft["engine"] == engine
        assert draft["sources"], "a generated draft names the passages it was written from"
        assert all(
            s["title"] == titles[int(s["id"].split(":")[1])] for s in draft["sources"] if s["id"].startswith("article:")
        )
        assert 0 <= draft["confidence"] <= 1
        if engine == "openai":
            assert draft["text"] == "You can reset your password under Account > Security."
            assert draft["sources"][0]["title"] == "Resetting your password"
        for client in (queue, customer, watcher):
            await client.close()

    asyncio.run(scenario())


@pytest.mark.browser
@pytest.mark.parametrize("generative_stack", ["openai"], indirect=True)
def test_the_agent_watches_a_generated_draft_form_in_the_browser_and_sends_it(
    generative_stack: tuple[str, LiveStack], knowledge: None, agent: User, browser: Browser
) -> None:
    _engine, stack = generative_stack
    base = stack.base_url
    customer = shop_chat(browser, base)
    customer_says(customer, "hello")
    expect(customer.locator('[data-chatdesk="message"][data-sender="customer"]')).to_have_attribute(
        "data-seq", "1", timeout=WAIT_MS
    )

    desk = agent_desk(browser, base, agent.username)
    desk.locator('[data-testid="queue-item"] a').first.click()
    expect(desk.locator('[data-testid="draft-status"]')).to_have_attribute("data-status", "ready", timeout=WAIT_MS)

    # A newer question: its draft is written while the agent looks, piece by piece.
    customer_says(customer, "I forgot my password")
    stream = desk.locator('[data-testid="draft-stream"]')
    expect(stream).to_be_visible(timeout=WAIT_MS)
    expect(stream).to_contain_text("You can reset", timeout=WAIT_MS)
    expect(stream).not_to_contain_text("Account > Security")  # still forming
    draft = desk.locator('[data-testid="draft-text"]')
    expect(draft).to_have_value("You can reset your password under Account > Security.", timeout=WAIT_MS)
    expect(stream).to_be_hidden()
    expect(desk.locator('[data-testid="draft-sources"]')).to_contain_text("Resetting your password")
    desk.locator('[data-testid="approve"]').click()

    reply = customer.locator('[data-chatdesk="message"][data-sender="agent"]').last
    expect(reply).to_have_text(re.compile("You can reset your password under Account > Security."), timeout=WAIT_MS)
