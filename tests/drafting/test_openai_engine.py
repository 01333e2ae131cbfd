"""The OpenAI-compatible engine against a real HTTP server on 127.0.0.1 speaking the streaming format."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chatdesk.drafting.base import DraftCancelled, DraftContext, EngineError, Turn
from chatdesk.drafting.engines.openai_engine import CONFIDENCE_FACTOR, OpenAIEngine, approximate_tokens
from chatdesk.drafting.generation import draft_confidence
from chatdesk.drafting.index import KnowledgeIndex, Passage
from chatdesk.drafting.prompt import SUMMARY_INSTRUCTION, SUMMARY_MAX_NEW_TOKENS
from tests.drafting.conftest import fake_encode

Behaviour = Callable[["Handler"], None]


@dataclass
class FakeServer:
    """Answers each POST with the next behaviour (the last one repeats) and records the requests."""

    behaviours: list[Behaviour] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def next_behaviour(self) -> Behaviour:
        return self.behaviours[min(len(self.requests) - 1, len(self.behaviours) - 1)]


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeServer = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        fake.next_behaviour()(self)

    def events(self, payloads: list[str], delay_s: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for payload in payloads:
            self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()
            time.sleep(delay_s)


def chunk(content: str | None = None, finish: str | None = None, logprobs: list[float] | None = None) -> str:
    choice: dict[str, Any] = {"index": 0, "delta": {} if content is None else {"content": content}}
    choice["finish_reason"] = finish
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": lp} for lp in logprobs]}
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


def streams(*pieces: str, logprobs: list[float] | None = None, done: bool = True) -> Behaviour:
    def behave(handler: Handler) -> None:
        payloads = [chunk()] + [chunk(p, logprobs=logprobs and [logprobs[i]]) for i, p in enumerate(pieces)]
        if done:
            payloads += [chunk(finish="stop"), "[DONE]"]
        handler.events(payloads)

    return behave


def answers(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Behaviour:
    def behave(handler: Handler) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return behave


def stalls(seconds: float) -> Behaviour:
    def behave(handler: Handler) -> None:
        time.sleep(seconds)

    return behave


def streams_forever(handler: Handler) -> None:
    try:
        handler.events([chunk()])
        while True:
            handler.wfile.write(f"data: {chunk('la ')}\n\n".encode())
            handler.wfile.flush()
            time.sleep(0.02)
    except (BrokenPipeError, ConnectionResetError):
        handler.server.fake.disconnected.set()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    fake = FakeServer(url=f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    httpd.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


def engine_for(server: FakeServer, **config: Any) -> OpenAIEngine:
    options: dict[str, Any] = {"model": "tiny-chat", "encode": fake_encode, "backoff_s": 0.01, "cancel_poll_s": 0}
    return OpenAIEngine(base_url=server.url, **{**options, **config})


def test_a_streamed_draft_with_its_request(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [streams("Your parcel ", "is on its way ", "[article:2].")]
    engine = engine_for(server, api_key="sk-test", max_new_tokens=50)
    pieces: list[str] = []
    result = engine.draft(replace(draft_context, on_text=pieces.append))
    assert result.text == "Your parcel is on its way." == "".join(pieces)
    assert [s.id for s in result.sources] == ["article:2"] and result.topic == "shipping"
    assert result.confidence == pytest.approx(CONFIDENCE_FACTOR * result.sources[0].score)
    assert result.tokens == 3 and set(result.timings) >= {"retrieve_s", "generate_s", "first_token_s"}
    [sent] = server.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    body = sent["body"]
    assert (body["model"], body["stream"], body["max_tokens"], body["temperature"]) == ("tiny-chat", True, 50, 0)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert "[article:2] Delivery times" in body["messages"][0]["content"]
    assert body["messages"][-1]["content"] == "where is my order? I ordered a jacket last week"
    # What drafting cost: the served model, and the prompt as estimated (the stream reports no usage).
    assert result.model_name == "tiny-chat"
    assert result.prompt_tokens == approximate_tokens(body["messages"]) > 0


def test_the_served_model_is_told_the_customers_language(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [streams("您的包裹正在路上 [article:2]。")]
    context = replace(draft_context, turns=[Turn("customer", "我的订单在哪里？")], language="zh-hans")
    assert engine_for(server).draft(context).text == "您的包裹正在路上。"
    system = server.requests[0]["body"]["messages"][0]["content"]
    assert "in Simplified Chinese (简体中文), the customer's language" in system


def test_sampling_options_and_logprobs_reach_the_server_and_the_confidence(
    server: FakeServer, draft_context: DraftContext
) -> None:
    server.behaviours = [streams("Soon", " [article:2]", logprobs=[-0.2, -0.4])]
    engine = engine_for(server, logprobs=True)
    options = {"decoding": {"strategy": "sample", "temperature": 0.4, "top_p": 0.5, "seed": 11}}
    result = engine.draft(replace(draft_context, options=options))
    body = server.requests[0]["body"]
    assert (body["temperature"], body["top_p"], body["seed"], body["logprobs"]) == (0.4, 0.5, 11, True)
    assert result.confidence == pytest.approx(draft_confidence(-0.3, result.sources[0].score))
    assert result.tokens == 2


def test_busy_servers_are_retried_before_any_text(server: FakeServer, draft_context: DraftContext) -> None:
    busy = answers(503, {"error": {"message": "overloaded"}})
    server.behaviours = [busy, answers(429, {}, {"Retry-After": "0"}), streams("Hello")]
    assert engine_for(server, retries=2).draft(draft_context).text == "Hello"
    assert len(server.requests) == 3


def test_retries_run_out_with_a_clear_error(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [answers(503, {"error": {"message": "overloaded"}})]
    with pytest.raises(EngineError, match=r"answered 503: overloaded \(after 2 attempts\)"):
        engine_for(server, retries=1).draft(draft_context)
    assert len(server.requests) == 2


def test_client_errors_are_not_retried(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [answers(401, {"error": {"message": "invalid api key"}})]
    with pytest.raises(EngineError, match="answered 401: invalid api key"):
        engine_for(server, retries=3).draft(draft_context)
    assert len(server.requests) == 1


def test_a_silent_server_times_out(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [stalls(2.0)]
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"sent nothing for 0.2s"):
        engine_for(server, timeout_s=0.2).draft(draft_context)
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 1


def test_an_unreachable_server_is_retried_then_reported(draft_context: DraftContext) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    engine = OpenAIEngine(base_url=f"http://127.0.0.1:{port}/v1", model="m", encode=fake_encode, backoff_s=0.01)
    with pytest.raises(EngineError, match=r"cannot reach the model server .*after 3 attempts"):
        engine.draft(draft_context)


def test_cancelling_closes_the_stream(server: FakeServer, draft_context: DraftContext) -> None:
    server.behaviours = [streams_forever]
    pieces: list[str] = []
    with pytest.raises(DraftCancelled):
        engine_for(server).draft(replace(draft_context, on_text=pieces.append, cancelled=lambda: len(pieces) >= 2))
    assert server.disconnected.wait(timeout=5)


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        (streams("Hel", done=False), "closed the stream before the draft was finished"),
        (lambda h: h.events([chunk("Hi"), json.dumps({"error": {"message": "model crashed"}})]), "model crashed"),
        (lambda h: h.events(["{not json"]), "not JSON"),
        (streams(" [article:2] "), "empty draft"),
    ],
)
def test_broken_streams_are_engine_errors(
    server: FakeServer, draft_context: DraftContext, behaviour: Behaviour, message: str
) -> None:
    server.behaviours = [behaviour]
    with pytest.raises(EngineError, match=message):
        engine_for(server).draft(draft_context)


def test_customer_data_is_masked_before_it_leaves_the_host(server: FakeServer, draft_context: DraftContext) -> None:
    turns = [Turn("customer", "I am ann@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, order 12345")]
    server.behaviours = [streams("Thanks")]
    engine_for(server, pii_masking="always").draft(replace(draft_context, turns=turns))
    engine_for(server, pii_masking="auto").draft(replace(draft_context, turns=turns))  # 127.0.0.1 is this host
    masked, local = (r["body"]["messages"] for r in server.requests)
    assert masked[-1]["content"] == "I am [email], call [phone], card [card], order 12345"
    assert local[-1]["content"] == turns[0].text
    assert masked[0] == local[0]  # nothing personal in these instructions and passages


def test_passages_are_masked_like_the_customers_words(server: FakeServer, draft_context: DraftContext) -> None:
    """An approved reply is an agent's answer to a customer: it may quote their e-mail, phone or card."""
    quoting = Passage(
        "reply:9", "Approved reply #9", "We wrote to ann@example.com and called +44 20 7946 0958 about card "
        "4111 1111 1111 1111.", "refunds", ("where is my refund",),
    )  # fmt: skip
    knowledge = KnowledgeIndex([quoting], fake_encode(list(quoting.keys)))
    context = replace(draft_context, turns=[Turn("customer", "where is my refund?")], knowledge=knowledge)
    server.behaviours = [streams("Thanks")]
    engine_for(server, pii_masking="always").draft(context)
    engine_for(server, pii_masking="never").draft(context)
    masked, plain = (r["body"]["messages"][0]["content"] for r in server.requests)
    assert "We wrote to [email] and called [phone] about card [card]." in masked
    for personal in ("ann@example.com", "7946 0958", "4111 1111"):
        assert personal not in json.dumps(server.requests[0]["body"])
        assert personal in plain


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"base_url": "ftp://x"}, "must start with http"),
        ({"model": ""}, "no model name"),
        ({"pii_masking": "sometimes"}, "PII masking must be one of"),
        ({"strategy": "beam"}, "beam search is not available"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        OpenAIEngine(**{"base_url": "http://127.0.0.1:9/v1", "model": "m", **config})


def test_beam_requests_are_refused(server: FakeServer, draft_context: DraftContext) -> None:
    with pytest.raises(EngineError, match="beam search is not available"):
        engine_for(server).draft(replace(draft_context, options={"decoding": {"strategy": "beam"}}))
    assert server.requests == []


def test_from_settings(settings: Any) -> None:
    settings.DRAFT_OPENAI_BASE_URL = "https://llm.example.com/v1/"
    settings.DRAFT_OPENAI_MODEL = "big-model"
    settings.DRAFT_OPENAI_API_KEY = "sk-x"
    settings.DRAFT_OPENAI_TIMEOUT_S = 12
    settings.DRAFT_PII_MASKING = "auto"
    engine = OpenAIEngine.from_settings()
    assert (engine.base_url, engine.model, engine.api_key, engine.timeout_s) == (
        "https://llm.example.com/v1", "big-model", "sk-x", 12.0,
    )  # fmt: skip
    assert engine.mask  # not this host


def test_a_handoff_summary_is_asked_of_the_server_greedily_and_masked(server: FakeServer) -> None:
    server.behaviours = [streams("The customer wants ", "a refund; nothing ", "was answered yet.")]
    turns = [Turn("customer", "I am ann@example.com and I want a refund"), Turn("agent", "Which order?")]
    summary = engine_for(server, pii_masking="always").summarise(turns)
    assert summary == "The customer wants a refund; nothing was answered yet."
    [sent] = server.requests
    body = sent["body"]
    assert (body["max_tokens"], body["temperature"]) == (SUMMARY_MAX_NEW_TOKENS, 0)
    assert body["messages"][0]["content"] == SUMMARY_INSTRUCTION
    assert body["messages"][1]["content"] == "Customer: I am [email] and I want a refund\nAgent: Which order?"


def test_an_empty_summary_is_an_engine_error(server: FakeServer) -> None:
    server.behaviours = [streams("  ")]
    with pytest.raises(EngineError, match="empty summary"):
        engine_for(server).summarise([Turn("customer", "hello, I need help with a refund")])
