"""Prompt-injection markers in customers' words: text that tries to steer the drafting model instead of
asking the desk something. Once a customer wrote such a message, autopilot sends no draft in that
conversation: agents review them.

Deliberately a short list of clear phrasings, in the languages our customers write (English, Chinese):
a false alarm costs one review, a miss could send whatever the model was talked into.
"""

from __future__ import annotations

import re

from chatdesk.conversations.models import Conversation, Message

_ENGLISH = (
    r"\b(ignore|disregard|forget|override|bypass)\s+(all\s+|any\s+|the\s+)?(your|my|the|previous|prior|above|earlier|"
    r"preceding|system|original)\s+((previous|prior|earlier|system|original)\s+)?"
    r"(instructions?|prompts?|rules?|directions?|guidelines?|context)\b",
    # "the instructions" alone is a customer's manual ("show me the instructions for the blender")
    r"\b(reveal|show|print|repeat|tell\s+me|output|leak|display)\s+(me\s+)?(your\s+((system|initial|hidden|original)\s+)?"
    r"(prompt|instructions?)|the\s+((system|initial|hidden|original)\s+)?prompt|"
    r"the\s+(system|initial|hidden|original)\s+instructions?)\b",
    r"\bsystem\s+prompt\b",
    r"\byou\s+are\s+now\s+(a|an|in|the)\b",
    r"\b(developer|jailbreak|god)\s+mode\b",
    r"\bnew\s+instructions?\s*:",
    r"\bact\s+as\s+(if\s+you\s+(are|were)\s+)?(an?\s+)?(unrestricted|unfiltered|different)\b",
)
_CHINESE = (
    r"(忽略|无视|忘记|忘掉|不要理会|跳过)(你|您)?(的)?(之前|以前|先前|上面|前面|所有|全部|原来|原先|系统)?的?(所有)?(指令|指示|提示|规则|设定|命令)",
    r"(显示|告诉我|输出|泄露|透露|重复|打印)(一下)?(你|您)?的?(系统)?(提示词|提示语|系统提示|指令|设定)",
    r"系统提示",
    r"(开发者|越狱)模式",
    r"(你|您)现在(是|扮演)",
)
INJECTION = re.compile("|".join((*_ENGLISH, *_CHINESE)), re.IGNORECASE)


def looks_like_injection(text: str) -> bool:
    """True when `text` contains a phrase that tries to instruct the drafting model."""
    return bool(INJECTION.search(text))


def conversation_has_injection(conversation: Conversation) -> bool:
    """True when any of the customer's messages in `conversation` looks like an injection: drafts see the
    earlier turns too, so one such message keeps autopilot off for the rest of the conversation."""
    texts = conversation.messages.filter(sender=Message.Sender.CUSTOMER).values_list("text", flat=True)
    return any(looks_like_injection(text) for text in texts.iterator())
