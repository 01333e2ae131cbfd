"""Prompt assembly, token-budget truncation and reading citations back."""

from __future__ import annotations

import pytest

from chatdesk.drafting.base import EngineError, Turn
from chatdesk.drafting.index import Match, Passage
from chatdesk.drafting.prompt import (
    TRUNCATION_MARK,
    ChatMessage,
    DraftTextFilter,
    build_prompt,
    conversation_messages,
    draft_sources,
    extract_citations,
    filter_draft_text,
    fold_system_message,
)


def words(messages: list[ChatMessage]) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word, two per message for the template."""
    return sum(len(m["content"].split()) + 2 for m in messages)


def match(number: int, score: float, text: str = "Some passage text.") -> Match:
    passage = Passage(f"article:{number}", f"Title {number}", text, "topic", ("key",))
    return Match(passage=passage, score=score, key="key")


TURNS = [
    Turn("customer", "first question about shipping"),
    Turn("agent", "first answer from the agent"),
    Turn("customer", "second question about my refund"),
    Turn("agent", "second answer"),
    Turn("customer", "and the latest question please"),
]


def test_roles_alternate_and_the_first_message_is_the_customers() -> None:
    turns = [
        Turn("agent", "Hi, I'm Ann"),
        Turn("customer", "hello"),
        Turn("customer", "my order?"),
        Turn("agent", "ok"),
    ]
    assert conversation_messages(turns) == [
        {"role": "user", "content": "hello\nmy order?"},
        {"role": "assistant", "content": "ok"},
    ]


def test_the_model_is_told_to_answer_in_the_customers_language() -> None:
    passages = [match(1, 0.9)]
    chinese = build_prompt(TURNS, passages, company_name="N", count_tokens=words, budget=10_000, language="zh-hans")
    assert "in Simplified Chinese (简体中文), the customer's language" in chinese.messages[0]["content"]
    unknown = build_prompt(TURNS, [match(1, 0.9)], company_name="N", count_tokens=words, budget=10_000)
    assert "in the customer's language" in unknown.messages[0]["content"]
    assert "Chinese" not in unknown.messages[0]["content"]


def test_everything_fits_with_passages_listed_under_their_ids() -> None:
    prompt = build_prompt(
        TURNS, [match(1, 0.9), match(2, 0.5)], company_name="Northwind", count_tokens=words, budget=10_000
    )
    system = prompt.messages[0]
    assert system["role"] == "system"
    assert "Northwind" in system["content"] and "[article:1] Title 1" in system["content"]
    assert "check with a colleague" in system["content"] and "[article:3]" in system["content"]
    assert [m["role"] for m in prompt.messages[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert prompt.messages[-1]["content"] == "and the latest question please"
    assert (prompt.dropped_turns, prompt.dropped_passages, prompt.customer_text_truncated) == (0, 0, False)
    assert prompt.tokens == words(prompt.messages)


def test_oldest_turns_go_first_then_the_least_relevant_passages() -> None:
    passages = [match(1, 0.4, "low " * 30), match(2, 0.9, "high " * 30)]
    full = build_prompt(TURNS, passages, company_name="N", count_tokens=words, budget=10_000).tokens

    fewer_turns = build_prompt(TURNS, passages, company_name="N", count_tokens=words, budget=full - 5)
    assert fewer_turns.dropped_turns == 1 and fewer_turns.dropped_passages == 0
    # The agent's answer to the dropped question now leads, and a chat starts with the customer.
    assert fewer_turns.messages[1]["content"] == "second question about my refund"
    assert fewer_turns.tokens <= full - 5

    no_turns = build_prompt(TURNS, passages, company_name="N", count_tokens=words, budget=full - 30)
    assert no_turns.dropped_turns == 4 and no_turns.dropped_passages == 1
    assert [m.passage.id for m in no_turns.passages] == ["article:2"]  # the more relevant one stays
    assert no_turns.messages[-1]["content"] == "and the latest question please"


def test_the_latest_customer_message_is_never_dropped_only_its_beginning_cut() -> None:
    long_question = " ".join(f"w{i}" for i in range(100)) + " so where is my parcel?"
    turns = [*TURNS[:-1], Turn("customer", long_question)]
    tiny = build_prompt(turns, [match(1, 0.9)], company_name="N", count_tokens=words, budget=120)
    assert tiny.customer_text_truncated
    assert tiny.dropped_turns == 4 and tiny.dropped_passages == 1
    latest = tiny.messages[-1]["content"]
    assert latest.startswith(TRUNCATION_MARK) and latest.endswith("so where is my parcel?")
    assert 115 <= tiny.tokens <= 120  # as much of the message as fits


def test_instructions_larger_than_the_budget_are_an_engine_error() -> None:
    with pytest.raises(EngineError, match="too small"):
        build_prompt(TURNS, [], company_name="N", count_tokens=words, budget=20)


def test_turns_after_the_latest_customer_message_are_ignored() -> None:
    prompt = build_prompt([*TURNS, Turn("agent", "typing…")], [], company_name="N", count_tokens=words, budget=10_000)
    assert prompt.messages[-1] == {"role": "user", "content": "and the latest question please"}


def test_a_conversation_without_a_customer_message_cannot_be_drafted() -> None:
    with pytest.raises(EngineError, match="no customer message"):
        build_prompt([Turn("agent", "hello?")], [], company_name="N", count_tokens=words, budget=10_000)


def test_fold_system_message_for_templates_without_a_system_role() -> None:
    messages: list[ChatMessage] = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert fold_system_message(messages) == [{"role": "user", "content": "S\n\nU"}]


def test_citations_are_read_in_order_and_unknown_ids_left_out() -> None:
    text = "Yes [article:3]. Also [reply:7, article:3] and [article:99]; see [note] and [link](x)."
    assert extract_citations(text) == ["article:3", "reply:7", "article:99"]
    assert extract_citations(text, known={"article:3", "reply:7"}) == ["article:3", "reply:7"]


@pytest.mark.parametrize(
    ("raw", "text", "cited"),
    [
        ("  Returns are free [article:1].\n", "Returns are free.", ["article:1"]),
        (
            "[reply:4] Refunds take a week [reply:4, article:2] here",
            "Refunds take a week here",
            ["reply:4", "article:2"],
        ),
        ("See [our policy] and [article:1", "See [our policy] and [article:1", []),
        ("A list:\n- one [article:2]\n- two", "A list:\n- one\n- two", ["article:2"]),
        ("Café 😀 [article:1]", "Café 😀", ["article:1"]),
    ],
)
def test_the_draft_filter_streams_exactly_what_it_would_give_at_once(raw: str, text: str, cited: list[str]) -> None:
    assert filter_draft_text(raw) == (text, cited)
    for size in (1, 2, 3, 7):
        stream = DraftTextFilter()
        pieces = [stream.feed(raw[i : i + size]) for i in range(0, len(raw), size)] + [stream.finish()]
        assert "".join(pieces) == text, size
        assert stream.cited == cited


def test_the_filter_holds_back_only_what_may_still_become_a_citation() -> None:
    stream = DraftTextFilter()
    assert stream.feed("Hello ") == "Hello"
    assert stream.feed("there [art") == " there"
    assert stream.feed("icle:1] now") == " now"
    assert stream.finish() == ""


def test_sources_are_the_cited_passages_or_all_of_them() -> None:
    used = [match(1, 0.9), match(2, 0.7)]
    assert [s.id for s in draft_sources(used, ["article:2"])] == ["article:2"]
    assert [s.id for s in draft_sources(used, [])] == ["article:1", "article:2"]
