"""The text rules on their own: tables of what customers write and what each rule makes of it."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from chatdesk.conversations import rules

ASKS_FOR_A_PERSON = [
    "Can I talk to a human please",
    "I want a real person",
    "ＨＵＭＡＮ please",
    "HUMAN",
    "agent!!!",
    "Representative.",
    "Ｉ ｗａｎｔ ａ ｈｕｍａｎ",
    "Let me speak with someone",
    "Speak to someone real!!",
    "Please connect me to an agent",
    "transfer me to a representative",
    "I need a human",
    "Get me a real person now",
    "can i have a live agent",
    "I'd like to speak to a manager",
    "talk to customer service please",
    "I don't want a bot, give me a human",
    "I want a human, not a bot",
    "No bots please",
    "Why can't I talk to a human?",
    "I don't mind waiting, just get me an agent",
    "I have no idea how this works, talk to a person",
    "I don’t need the FAQ. I need a human.",
    "人工客服",
    "转人工",
    "转人工！",
    "我要人工",
    "找客服",
    "我要找人工客服",
    "请帮我转接人工服务",
    "不想跟机器人聊了，转人工",
    "我不要机器人",
    "我想和真人说话",
    "能不能换个人",
    "为什么不能转人工？",
    "麻烦转一下人工",
    "ＲＥＡＬ ＰＥＲＳＯＮ！！",
]
DOES_NOT_ASK = [
    "I don't need a human",
    "no need for an agent",
    "I do not want to talk to a person",
    "A human is not needed, thanks",
    "I never asked for an agent",
    "Don't transfer me to an agent",
    "no human please",
    "I don't want to speak to anyone, just tell me the price",
    "Are you a human?",
    "Is this a real person?",
    "Where is my order?",
    "My package was delivered to the wrong person",
    "The agent said my refund is coming",
    "Can my friend pick up the order for me?",
    "Hello",
    "不用转人工",
    "不需要人工客服",
    "别转人工",
    "不要转人工，我自己看看",
    "转人工就不用了",
    "先不转人工，我再看看",
    "你是人工智能吗",
    "人工智能能帮我吗",
    "人工费怎么算",
    "我的订单在哪里",
]


@pytest.mark.parametrize("text", ASKS_FOR_A_PERSON)
def test_plain_words_asking_for_a_person_are_recognised(text: str) -> None:
    assert rules.asks_for_human(text), text


@pytest.mark.parametrize("text", DOES_NOT_ASK)
def test_negations_and_mere_mentions_of_a_person_are_not_requests(text: str) -> None:
    assert rules.person_request(text) is None, text


def test_the_table_is_large_and_covers_both_languages_and_outcomes() -> None:
    table = ASKS_FOR_A_PERSON + DOES_NOT_ASK
    chinese = [t for t in table if rules.HAN.search(t)]
    assert len(table) >= 40
    assert {t in ASKS_FOR_A_PERSON for t in chinese} == {True, False}
    assert {t in ASKS_FOR_A_PERSON for t in table if t not in chinese} == {True, False}


def test_a_request_after_a_negated_one_still_counts() -> None:
    assert rules.person_request("I don't need the bot. Get me a human") == "get me a human"
    assert rules.person_request("不用机器人回答，转人工") == "人工"


ANGRY_OR_DISTRESSED = [
    "This is ridiculous, I have waited three weeks and nobody answers!",
    "I am furious. Worst service ever.",
    "My order never arrived and I am really upset",
    "I hate this company",
    "I am so frustrated, this is the third time I ask",
    "this is unacceptable",
    "your product is terrible and you are useless",
    "THIS IS A SCAM. I WANT MY MONEY BACK NOW!!!",
    "I'm desperate, my card was charged twice and I can't pay rent",
    "I am not happy at all",
    "你们的服务太差了，我要投诉！",
    "气死我了，等了好几天还没到",
    "垃圾客服，一点用都没有",
    "太失望了",
    "我真的很着急，钱被扣了两次",
    "简直就是骗子！",
    "什么鬼，又坏了",
    "Thanks, 但是太慢了，气死我了",
]
CALM = [
    "not bad at all",
    "不差",
    "Where is my order?",
    "Thanks, that helps!",
    "Hi, I would like to change my address",
    "Can I get a refund? The item is broken.",
    "cancel my order",
    "I lost my card",
    "The package arrived damaged",
    "Could you check why my payment failed?",
    "OK",
    "你好，我的订单在哪里？",
    "麻烦帮我查一下物流",
    "谢谢，很满意",
    "还不错",
    "好久没收到快递了，帮我看看",
    "差不多明天能到吗？",
    "我想退货",
    "请问可以开发票吗",
    "没问题，谢谢",
]


@pytest.mark.parametrize("text", ANGRY_OR_DISTRESSED)
def test_angry_and_distressed_customers_score_below_the_threshold(text: str, settings: Any) -> None:
    assert -1 <= rules.sentiment(text) < settings.ESCALATION_SENTIMENT_BELOW


@pytest.mark.parametrize("text", CALM)
def test_neutral_polite_and_negated_words_stay_above_the_threshold(text: str, settings: Any) -> None:
    assert settings.ESCALATION_SENTIMENT_BELOW < rules.sentiment(text) <= 1


def test_chinese_negators_and_intensifiers_turn_and_scale_the_word() -> None:
    assert rules.chinese_sentiment("差") < 0 < rules.chinese_sentiment("不差")
    assert rules.chinese_sentiment("好") > 0 > rules.chinese_sentiment("不好")
    assert rules.chinese_sentiment("太差了") < rules.chinese_sentiment("差") < rules.chinese_sentiment("有点差")
    assert rules.chinese_sentiment("太差了！！") < rules.chinese_sentiment("太差了")
    assert rules.chinese_sentiment("请问运费多少") == 0


def test_mixed_text_takes_the_stronger_feeling_of_its_two_parts() -> None:
    assert rules.sentiment("Thanks, 但是太慢了，气死我了") == pytest.approx(
        rules.chinese_sentiment("Thanks, 但是太慢了，气死我了"), abs=1e-4
    )
    assert rules.sentiment("I am furious 你好") < -0.5


def test_the_lexicons_load_from_the_repository_and_the_package_without_network(monkeypatch: Any) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sentiment analyser tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    rules._vader.cache_clear()
    rules._chinese_lexicon.cache_clear()
    assert rules.sentiment("I am furious") < 0 and rules.sentiment("气死我了") < 0
    lexicon = rules.load_chinese_lexicon()
    assert len(lexicon.words) > 100 and "不" in lexicon.negators and lexicon.intensifiers["非常"] > 1
    assert rules._vader().lexicon["useless"] == -2.5  # the desk's override of VADER's -1.8


def test_a_malformed_lexicon_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.txt"
    bad.write_text("[words]\n好\t1.5\n差 much\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        rules.load_chinese_lexicon(bad)


PHRASES = ["lawyer", "sue", "close my account", "律师", "注销账户", "hurt myself"]


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("I will talk to my LAWYER about this", "lawyer"),
        ("I'm going to sue you", "sue"),
        ("Ｐｌｅａｓｅ ＣＬＯＳＥ ｍｙ  account.", "close my account"),
        ("我要找律师", "律师"),
        ("怎么注销账户？", "注销账户"),
        ("sometimes I want to hurt myself", "hurt myself"),
        ("There is an issue with my parcel", None),  # "sue" inside "issue"
        ("lawyers", None),
        ("My account is closed?", None),
        ("Where is my order?", None),
    ],
)
def test_sensitive_phrases_match_whole_words_in_any_case_and_width(text: str, hit: str | None) -> None:
    assert rules.sensitive_phrase(text, PHRASES) == hit


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("Where is my order?", "I asked where my order is, where is it?", True),
        ("How do I return my shoes?", "How can I return the shoes I bought?", True),
        ("How do I change my delivery address?", "I asked how to change the delivery address, not billing", True),
        ("Can I pay with bitcoin?", "So can I pay with bitcoin or not?", True),
        ("我的订单在哪里？", "我问的是我的订单到哪里了", True),
        ("怎么退货", "我想知道怎么退货", True),
        ("How do I return my shoes?", "Do you ship to Norway?", False),
        ("How do I return my shoes?", "How long does the refund take?", False),
        ("Where is my order?", "Where is my order, and can I pay by card?", False),
        ("Can I pay with bitcoin?", "Can I pay with paypal?", False),
        ("我的订单在哪里？", "可以开发票吗？", False),
        ("hi", "hi", False),
        ("thanks!", "Thanks", False),
    ],
)
def test_a_rephrased_question_is_similar_and_a_new_one_is_not(
    first: str, second: str, same: bool, settings: Any
) -> None:
    similarity = rules.question_similarity(first, second)
    assert similarity == rules.question_similarity(second, first)
    assert (similarity >= settings.ESCALATION_REPEAT_SIMILARITY) is same


@pytest.mark.parametrize(
    ("text", "abusive"),
    [
        ("you idiot", True),
        ("You are so USELESS", True),
        ("f*** you", True),
        ("shut up", True),
        ("I will find you", True),
        ("傻逼客服", True),
        ("你去死吧", True),
        ("滚蛋", True),
        ("This product is useless", False),
        ("Can you shut down my old account?", False),
        ("I want to find your store", False),
        ("这个滚筒洗衣机怎么用", False),
        ("I killed it at the gym", False),
    ],
)
def test_insults_and_threats_to_staff_are_abuse_and_complaints_are_not(text: str, abusive: bool) -> None:
    assert (rules.abuse_marker(text) is not None) is abusive


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I want a refund of $250", [250.0]),
        ("refund of 1,250.50 dollars please", [1250.5]),
        ("Refund ￥300 to my card", [300.0]),  # full width
        ("请退款 300元", [300.0]),
        ("退款 500 块", [500.0]),
        ("USD 80 and then €95.", [80.0, 95.0]),
        ("it was 1.5k", [1500.0]),
        ("refund within 30 days", []),
        ("20% off", []),
        ("order 12345678", []),  # an order number, not money
        ("3 items", []),
    ],
)
def test_amounts_are_money_not_counts_or_order_numbers(text: str, found: list[float]) -> None:
    assert rules.amounts(text) == found


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("I want a REFUND of $250", 250.0),
        ("refund 50 now, later a refund of 900", 900.0),
        ("I want a refund of $150", None),  # not above
        ("I paid $900 for it", None),  # no phrase
        ("refund it within 300 days", None),  # days, not money
    ],
)
def test_a_sensitive_amount_needs_the_phrase_and_an_amount_above(text: str, amount: float | None) -> None:
    assert rules.sensitive_amount(text, "refund", 200) == amount
