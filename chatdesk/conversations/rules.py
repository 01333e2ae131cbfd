"""The escalation rules that read a customer's words: pure functions of text, no database.

Each takes what a customer typed (any width, case or punctuation) and answers one question: did they ask
for a person, how do they feel, which sensitive phrase did they use, is this the same question again,
did they abuse staff. `chatdesk.conversations.escalation` runs them on a new message and says which
flags to record; docs/escalation.md says how each works and how to tune it.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Han ideographs (and their extensions and compatibility forms): the part of a text scored as Chinese.
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Clause ends after NFKC (full-width ，！？；： are ASCII by then; 。、 stay).
CLAUSE_END = re.compile(r"[.,!?;:\n。、…]")


def normalise(text: str) -> str:
    """NFKC (full-width letters and punctuation become ASCII), casefolded, curly quotes straightened,
    runs of whitespace made one space: the form every rule but sentiment reads."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip()


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _excerpt(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- 1. asked for a person -------------------------------------------------------------------------------

_PERSON = (
    r"(?:human(?:\s+being)?s?|person|people|agents?|reps?|representatives?|operators?|staff(?:\s+member)?|"
    r"employee|someone\s+real|somebody\s+real|(?:a\s+)?manager|supervisor|"
    r"customer\s+(?:service|support|care)(?:\s+(?:agent|rep|representative|team|person))?|"
    r"support\s+(?:agent|staff|team|person)|service\s+(?:agent|rep|representative))"
)
_REAL = r"(?:(?:real|live|actual|proper|human)\s+)*"
_DET = r"(?:(?:an?|the|some|your|one\s+of\s+your)\s+)?"
_ENGLISH_REQUESTS = (
    # "talk to a human", "speak with someone", "chat with an agent"
    rf"\b(?:talk|speak|chat|get\s+through)\s+(?:to|with)\s+{_DET}{_REAL}(?:{_PERSON}|someone|somebody|anyone|anybody)\b",
    # "connect me to an agent", "transfer me to a person", "put me through to a representative"
    rf"\b(?:connect|transfer|put|pass|hand|switch|forward|escalate|route|send)\s+(?:me|this|us|it|my\s+\w+)?\s*"
    rf"(?:through\s+|over\s+)?(?:to|with)\s+{_DET}{_REAL}{_PERSON}\b",
    # "I want a human", "get me an agent", "can I have a real person"
    rf"\b(?:want|need|like|request|prefer|reach|contact|bring\s+me|get\s+me|give\s+me|(?:can|could|may)\s+i\s+(?:have|get))\s+"
    rf"{_DET}{_REAL}"
    r"(?:human|person|agent|representative|rep|operator|supervisor|manager)\b",
    r"\b(?:real|live|actual)\s+(?:human|person|people|agent|representative|operator|rep)\b",
    r"\bhuman\s+(?:agent|support|help|assistance|operator|representative)\b",
    r"\b(?:no|not\s+a|stop\s+the|enough\s+of\s+the|no\s+more)\s+(?:bots?|robots?|machines?|ai)\b",
    r"\bdon'?t\s+want\s+(?:to\s+(?:talk|speak|chat)\s+(?:to|with)\s+)?(?:an?\s+|the\s+|your\s+)?(?:bot|robot|machine|ai)\b",
)
_CHINESE_REQUESTS = (
    r"人工",  # 转人工, 人工客服, 人工服务, 要人工 ("人工智能", "人工费" are removed before matching)
    r"真人|活人",
    r"(?:找|要|转|接|叫|换|来)(?:个|一个|一位|位)?(?:客服|工作人员|经理|主管)|换(?:个|一个)人",
    r"(?:和|跟|与)(?:真人|客服|工作人员|你们的?(?:员工|工作人员|客服))(?:说|聊|谈|对话|沟通|联系)",
    r"(?:不要|不想|不想要)(?:和|跟)?机器人",
)
PERSON_REQUEST = re.compile("|".join((*_ENGLISH_REQUESTS, *_CHINESE_REQUESTS)))
# Phrases that name a person but ask for none: removed before matching.
_NOT_REQUESTS = re.compile(
    r"人工智能|人工费|人工成本|人工湖"
    r"|\b(?:are\s+you|is\s+(?:this|that|it)|am\s+i\s+(?:talking|speaking|chatting)\s+(?:to|with))\s+"
    r"(?:an?\s+)?(?:real\s+|live\s+|actual\s+)?(?:human|person|bot|robot|agent|machine|ai)\b"
)
# Negation in the same clause, before the request: "I don't need a human", "不用转人工".
_NEGATION_BEFORE = re.compile(
    r"\b(?:don'?t|do\s+not|does\s+not|doesn'?t|didn'?t|did\s+not|no\s+need|needn'?t|never|without|"
    r"no\s+thanks|not|won'?t|wouldn'?t)\b|\bno\s*$"
    r"|不用|不要|不需要|不必|无需|无须|没必要|用不着|不想|先不|不是|并不|别"
)
# What makes a negation no negation: "why can't I talk to a human", "I don't mind a person", "别的".
_NEGATION_EXCEPTIONS = re.compile(
    r"\bwhy\b.*|\b(?:don'?t|do\s+not|wouldn'?t)\s+(?:mind|care)\b|\bno\s+one\b|为什么.*|为啥.*|怎么.*|别的|别人"
)
# Negation right after the request: "a human is not needed", "转人工就不用了".
_NEGATION_AFTER = re.compile(
    r"^\W*(?:is\s+|are\s+)?(?:not\s+(?:needed|necessary|required)|no\s+thanks|isn'?t\s+(?:needed|necessary))"
    r"|^(?:客服|服务)?(?:就|也|先)?(?:不用|不必|不需要|算了|没必要)"
)
# Reset words: "I don't think you can help, so get me a human" asks after "so".
_CLAUSE_RESET = re.compile(r"\b(?:but|so|just|instead|rather|please|then)\b|但是|可是|还是|所以|直接|麻烦|请")
# A message that is only these words (and a person word) asks for a person: "HUMAN please", "agent!!".
_BARE_FILLER = _wordset(
    "please pls plz now asap a an the real live i want need just thanks thank you give get me hello hi hey ok "
    "okay can talk speak to with"
)
_BARE_PERSON = _wordset("human humans person agent agents representative rep operator customerservice support staff")


def person_request(text: str) -> str | None:
    """The words in `text` that ask for a person (e.g. "talk to a human", "转人工"), or None.

    Case, width and punctuation do not matter; a request negated in its clause ("I don't need a human",
    "不用转人工", "a human is not needed") does not count, a later one in the same message does.
    """
    norm = _NOT_REQUESTS.sub(" ", normalise(text))
    words = re.findall(r"[a-z]+", norm)
    if words and not HAN.search(norm):
        joined = " ".join(words).replace("customer service", "customerservice")
        content = [w for w in joined.split() if w not in _BARE_FILLER]
        if content and set(content) <= _BARE_PERSON:
            return " ".join(words)
    for match in PERSON_REQUEST.finditer(norm):
        clause = CLAUSE_END.split(norm[: match.start()])[-1]
        clause = _CLAUSE_RESET.split(clause)[-1]
        clause = _NEGATION_EXCEPTIONS.sub(" ", clause)
        if _NEGATION_BEFORE.search(clause):
            continue
        if _NEGATION_AFTER.search(norm[match.end() :]):
            continue
        return match.group(0)
    return None


def asks_for_human(text: str) -> bool:
    """True when the customer asks for a person in plain words (see `person_request`)."""
    return person_request(text) is not None


# -- 2. sentiment ------------------------------------------------------------------------------------------

# VADER's normalisation of a summed score into -1..1, used for the Chinese part too so both scales agree.
VADER_ALPHA = 15.0
NEGATION_FACTOR = -0.74  # VADER's N_SCALAR
EXCLAMATION_BOOST = 0.292  # VADER's, per "!" up to four
CHINESE_LEXICON = Path(__file__).parent / "data" / "sentiment_zh.txt"
ENGLISH_OVERRIDES = Path(__file__).parent / "data" / "sentiment_en_overrides.txt"
_MODIFIER_REACH = 3  # Han characters a negator or intensifier may stand before its word


@dataclass(frozen=True)
class ChineseLexicon:
    words: dict[str, float]
    negators: frozenset[str]
    intensifiers: dict[str, float]

    @property
    def longest(self) -> int:
        return max(map(len, (*self.words, *self.negators, *self.intensifiers)))


def load_chinese_lexicon(path: Path = CHINESE_LEXICON) -> ChineseLexicon:
    """Parse the lexicon file (format in its header). Raises ValueError on a malformed line."""
    words: dict[str, float] = {}
    negators: set[str] = set()
    intensifiers: dict[str, float] = {}
    section = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line
            continue
        parts = line.split()
        try:
            if section == "[words]" and len(parts) == 2:
                words[parts[0]] = float(parts[1])
            elif section == "[intensifiers]" and len(parts) == 2:
                intensifiers[parts[0]] = float(parts[1])
            elif section == "[negators]" and len(parts) == 1:
                negators.add(parts[0])
            else:
                raise ValueError(line)
        except ValueError:
            raise ValueError(f"{path.name} line {number}: cannot read {raw!r}") from None
    return ChineseLexicon(words=words, negators=frozenset(negators), intensifiers=intensifiers)


@functools.cache
def _chinese_lexicon() -> ChineseLexicon:
    return load_chinese_lexicon()


def load_weights(path: Path) -> dict[str, float]:
    """word -> weight from a "word <TAB> weight" file ("#" comments). Raises ValueError on a malformed line."""
    weights: dict[str, float] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            word, weight = line.split()
            weights[word] = float(weight)
        except ValueError:
            raise ValueError(f"{path.name} line {number}: cannot read {raw!r}") from None
    return weights


@functools.cache
def _vader() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()  # reads the lexicon shipped inside the package; no network
    analyzer.lexicon.update(load_weights(ENGLISH_OVERRIDES))
    return analyzer


def _compound(total: float, exclamations: int) -> float:
    if total:
        total += math.copysign(min(exclamations, 4) * EXCLAMATION_BOOST, total)
    return total / math.sqrt(total * total + VADER_ALPHA)


def chinese_sentiment(text: str, lexicon: ChineseLexicon | None = None) -> float:
    """-1..1 for the Chinese words of `text`, 0 when none is in the lexicon.

    Longest match first at each position; a negator or intensifier applies to the next scored word
    within a few characters; "!" strengthens the total; the sum is squashed as VADER does.
    """
    lex = lexicon or _chinese_lexicon()
    text = unicodedata.normalize("NFKC", text)
    longest = lex.longest
    total, factor, negations, reach = 0.0, 1.0, 0, 0
    i = 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            piece = text[i : i + size]
            if piece in lex.words:
                score = lex.words[piece] * factor
                total += score * NEGATION_FACTOR if negations % 2 else score
                factor, negations, reach = 1.0, 0, 0
                break
            if piece in lex.negators:
                negations, reach = negations + 1, _MODIFIER_REACH
                break
            if piece in lex.intensifiers:
                factor, reach = factor * lex.intensifiers[piece], _MODIFIER_REACH
                break
        else:
            size = 1
            reach -= 1
            if reach <= 0 or CLAUSE_END.match(text[i]):
                factor, negations, reach = 1.0, 0, 0
        i += size
    return _compound(total, text.count("!"))


def english_sentiment(text: str) -> float:
    """VADER's compound score (-1..1) of `text`; capitals and "!" count, so it is not casefolded."""
    return float(_vader().polarity_scores(text)["compound"])


def sentiment(text: str) -> float:
    """-1 (angry, distressed) .. 1 (pleased) for a customer message in English, Chinese or both.

    Each script's part is scored on its own (VADER for the Latin part, the desk's lexicon for the Han
    part) and the stronger feeling wins: "thanks, 但是太慢了，气死我了" is as angry as its Chinese.
    """
    text = unicodedata.normalize("NFKC", text)
    latin = HAN.sub(" ", text)
    scores = [english_sentiment(latin)] if re.search(r"[A-Za-z]", latin) else []
    if HAN.search(text):
        scores.append(chinese_sentiment(text))
    if not scores:
        return 0.0
    strongest: float = max(scores, key=_strength)
    return round(strongest, 4)


def _strength(score: float) -> tuple[float, float]:
    """Order of feelings: the stronger first, and of two equally strong the more negative."""
    return abs(score), -score


# -- 3. sensitive phrases ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in normalise(phrase).split()]
    body = r"\s+".join(words)
    if re.search(r"[a-z0-9]", phrase.casefold()):
        body = rf"(?<![\w]){body}(?![\w])"
    return re.compile(body)


def sensitive_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The first of `phrases` found in `text`, or None. Case- and width-insensitive; a phrase with Latin
    letters must stand as whole words ("sue" is not in "issue"), a Chinese one anywhere."""
    norm = normalise(text)
    for phrase in phrases:
        if phrase.strip() and _phrase_pattern(phrase).search(norm):
            return phrase
    return None


# Amounts a customer names: "$1,250.50", "250 dollars", "USD 80", "€90", "300元", "300 块", "1.5k".
_AMOUNT = re.compile(
    r"(?<![\w.])(?:(?:[$€£¥￥]|usd|eur|gbp|rmb|cny)\s?)?"
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(k)?(?![a-z0-9_]|[.,]\d)"
)
_NOT_MONEY_AFTER = re.compile(
    r"\s*(?:%|percent|days?|hours?|minutes?|weeks?|months?|years?|times|items?|pcs|kg|g|cm|mm|天|小时|分钟|周|个月|年|次|件|个)"
)


def amounts(text: str) -> list[float]:
    """The amounts of money `text` names, in the order written: numbers with or without a currency, but
    not counts of days, items, percentages or order numbers (numbers of 7 or more digits with no currency)."""
    norm = normalise(text)
    found = []
    for match in _AMOUNT.finditer(norm):
        digits, thousands = match.group(1), match.group(2)
        has_currency = match.group(0)[0] not in "0123456789" or _CURRENCY_AFTER.match(norm, match.end())
        if _NOT_MONEY_AFTER.match(norm, match.end()) and not has_currency:
            continue
        if not has_currency and len(digits.replace(",", "").split(".")[0]) >= 7:
            continue  # an order or phone number, not an amount
        value = float(digits.replace(",", "")) * (1000 if thousands else 1)
        found.append(value)
    return found


_CURRENCY_AFTER = re.compile(r"\s*(?:dollars?|bucks|euros?|pounds?|yuan|rmb|usd|eur|gbp|元|块|塊|美元|欧元|英镑)")


def sensitive_amount(text: str, phrase: str, above: float) -> float | None:
    """The first amount above `above` in a message that also has `phrase` (sensitive_phrase's matching),
    e.g. "refund" above 200 in "I want a refund of $250"; None when either is missing."""
    if sensitive_phrase(text, [phrase]) is None:
        return None
    return next((amount for amount in amounts(text) if amount > above), None)


# -- 4. repeated question ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Words that carry no question of their own, and the words of repeating itself ("I asked", "again", "still").
_STOPWORDS = _wordset(
    "a an the i me my we our us you your it its it's is are was were be been am do does did doing to of in on "
    "for with at by from and or but so this that these those can could would should will shall may might must "
    "have has had just please pls plz thanks thank hi hello hey ok okay again still already asked ask asking "
    "said say saying question told tell i'm im i've there here then than if as also too very really "
    "want wanted like know need wondering wonder help any some not no one"
) | frozenset("我你您的了是吗呢啊吧在到问想知道请一下们个这那就还也都又再呀哦嗯")
MIN_CONTENT_WORDS = 2  # "hi" again, "thanks" again: no question to repeat
FUZZY_WORD_MATCH = 80  # rapidfuzz ratio at which two words are one (order/orders, adress/address)


def _content_words(text: str) -> list[str]:
    return list(dict.fromkeys(t for t in _TOKEN.findall(normalise(text)) if t not in _STOPWORDS))


def _coverage(words: list[str], other: list[str]) -> float:
    """Share of `words` found in `other`, a Latin word also when spelt nearly alike."""
    found = sum(
        1
        for word in words
        if word in other
        or (len(word) > 2 and process.extractOne(word, other, scorer=fuzz.ratio, score_cutoff=FUZZY_WORD_MATCH))
    )
    return found / len(words)


def question_similarity(first: str, second: str) -> float:
    """0..1: how much `second` asks the same as `first`. Over the content words of each (normalised, each Han
    character a word, function words and "asked/again/still" left out), the F1 of how many of each message's
    words the other has, words matched by rapidfuzz's ratio. Symmetric, and low when one message merely
    contains the other plus a new question ("where is my order" / "where is my order, can I pay by card?":
    0.67). 0 when either has fewer than MIN_CONTENT_WORDS content words."""
    a, b = _content_words(first), _content_words(second)
    if min(len(a), len(b)) < MIN_CONTENT_WORDS:
        return 0.0
    forward, backward = _coverage(a, b), _coverage(b, a)
    if not forward + backward:
        return 0.0
    return round(2 * forward * backward / (forward + backward), 4)


# -- 5. abuse ----------------------------------------------------------------------------------------------

_ENGLISH_ABUSE = (
    r"\bf+u+c*k+(?:ing)?\s+(?:you|u|off|this|your)\b",
    r"\bf\W{0,3}\*+\W{0,3}k?\s+(?:you|off)\b",
    r"\bscrew\s+you\b",
    r"\bshut\s+(?:the\s+\w+\s+)?up\b",
    r"\bgo\s+to\s+hell\b",
    r"\b(?:you(?:'re|\s+are)?|u\s+r|ur)\s+(?:an?\s+|such\s+an?\s+|so\s+|fucking\s+)?"
    r"(?:idiot|idiots|moron|morons|stupid|useless|incompetent|pathetic|clown|clowns|retard)\b",
    r"\b(?:idiot|moron|bitch|asshole|bastard|dickhead|retard)s?\b",
    r"\b(?:i(?:'ll|\s+will)|gonna|going\s+to)\s+(?:kill|hurt|find|beat|destroy)\s+(?:you|u|your\s+staff|all\s+of\s+you)\b",
)
_CHINESE_ABUSE = (
    r"傻[逼比b屄]|sb客服|煞笔|脑残|白痴|蠢货|蠢猪|废物|混蛋|王八蛋|狗东西|滚开|滚蛋|给我滚|你滚|去死|"
    r"你妈|操你|草你|尼玛|弄死你|杀了你|打死你|砍死你",
)
ABUSE = re.compile("|".join((*_ENGLISH_ABUSE, *_CHINESE_ABUSE)))


def abuse_marker(text: str) -> str | None:
    """The insult or threat to staff in `text` ("you idiot", "I'll find you", "傻逼", "去死"), or None."""
    match = ABUSE.search(normalise(text))
    return _excerpt(match.group(0), 40) if match else None


def quote(text: str) -> str:
    """`text` shortened for a flag's detail: "said: '…'"."""
    return _excerpt(text, 60)
