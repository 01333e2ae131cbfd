"""What the widget tells a customer about who answers them (the handoff message and its kin), in the
customer's language: a manager's own wording (CustomerNotice, edited in the admin) where there is one,
else the built-in wording below. docs/escalation.md ("What the customer is told").
"""

from __future__ import annotations

import re

from django.conf import settings

from chatdesk.conversations.models import CustomerNotice
from chatdesk.conversations.rules import HAN

Code = CustomerNotice.Code

BUILT_IN: dict[str, dict[str, str]] = {
    Code.WAITING_FOR_AGENT: {
        "en": "We are finding an agent for you…",
        "zh-hans": "正在为您转接人工客服，请稍候…",
    },
    Code.NO_AGENT_ONLINE: {
        "en": "No one is at the desk right now. Leave your email address and we will write back; "
        "your conversation stays in the queue.",
        "zh-hans": "现在没有客服在线。请留下您的邮箱地址，我们会尽快回复；您的对话会一直保留在队列中。",
    },
    Code.EMAIL_LEFT: {
        "en": "Thanks. Someone will write to {email} as soon as they can.",
        "zh-hans": "谢谢。我们会尽快发邮件到 {email} 回复您。",
    },
    Code.AGENT_JOINED: {
        "en": "An agent has joined the conversation.",
        "zh-hans": "人工客服已加入对话。",
    },
    Code.REVIEWING: {
        "en": "An agent is reviewing a reply…",
        "zh-hans": "客服正在审核回复…",
    },
    Code.CLOSED: {
        "en": "This conversation is closed. Write again any time.",
        "zh-hans": "本次对话已结束。欢迎随时再来咨询。",
    },
}

_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def language_code(tag: object) -> str | None:
    """The desk's language for a browser language tag ("zh-CN", "zh-Hans-SG", "en-GB", "ZH"), or None
    for a tag it does not speak. Traditional-script tags (zh-TW, zh-Hant...) are not Simplified Chinese."""
    if not isinstance(tag, str):
        return None
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh" and not ({"hant", "tw", "hk", "mo"} & set(parts[1:])):
        return "zh-hans"
    return None


def language_of_text(text: str) -> str | None:
    """The language a customer wrote in, when the text says so clearly: two or more Han characters →
    zh-hans; three or more Latin words and no Han → en; otherwise None ("ok", "123", "??")."""
    han = len(HAN.findall(text))
    if han >= 2:
        return "zh-hans"
    if han == 0 and len(_LATIN_WORD.findall(text)) >= 3:
        return "en"
    return None


def notice_text(code: str, language: str, **values: str) -> str:
    """The sentence for `code` in `language` (the site's first language when the desk does not speak it),
    with {email} and the like filled in. A manager's CustomerNotice wins over the built-in wording."""
    spoken = {spoken_code for spoken_code, _name in settings.LANGUAGES}
    language = language if language in spoken else settings.LANGUAGES[0][0]
    own = CustomerNotice.objects.filter(code=code, language=language).values_list("text", flat=True).first()
    built_in = BUILT_IN[code]
    template = own or built_in.get(language) or built_in["en"]
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):  # a manager's text with a stray or unknown {placeholder}
        return template
