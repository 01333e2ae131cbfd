"""Masks customers' personal data in text sent to a model outside this host.

`mask_pii` replaces e-mail addresses with [email], payment card numbers (13–19 digits passing the
Luhn check) with [card], IBANs (valid mod-97 checksum) with [iban] and phone numbers with [phone].
A number counts as a phone number when it has 7–15 digits and looks like one: it starts with + or
00, or its digits are grouped by spaces, dots, dashes or brackets, or it is a bare run of at least
10 digits. Shorter bare numbers (order numbers, amounts) and dates are kept, since drafts need them.

`should_mask` decides from the DRAFT_PII_MASKING setting: "always", "never", or "auto" — mask
unless the endpoint is this host (localhost, 127.0.0.0/8, ::1).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MODES = ("auto", "always", "never")

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# Digit runs with single separators between groups, optionally opened by + or a bracketed group.
_NUMBER = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{5,}\d(?![\w])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){11,30}\b")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _mask_number(match: re.Match[str]) -> str:
    raw = match.group(0)
    # The character class may have swallowed separators at either end; keep them.
    stripped = raw.strip(" .-")
    lead = raw[: len(raw) - len(raw.lstrip(" .-"))]
    trail = raw[len(raw.rstrip(" .-")) :]
    digits = re.sub(r"\D", "", stripped)
    if re.search(r"\s{2,}|[.-]{2,}", stripped) or _DATE.fullmatch(stripped):
        return raw  # several numbers separated by wider gaps, or a date
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"{lead}[card]{trail}"
    grouped = bool(re.search(r"\d[\s().-]+\d", stripped)) or stripped.startswith("(")
    international = stripped.startswith(("+", "00"))
    if 7 <= len(digits) <= 15 and (international or grouped or len(digits) >= 10):
        return f"{lead}[phone]{trail}"
    return raw


def mask_pii(text: str) -> str:
    """`text` with e-mails, card numbers, IBANs and phone numbers replaced by placeholders."""
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(lambda m: "[iban]" if iban_valid(m.group(0)) else m.group(0), text)
    return _NUMBER.sub(_mask_number, text)


def is_local(base_url: str) -> bool:
    """True when the URL's host is this machine."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def should_mask(mode: str, base_url: str) -> bool:
    """Whether prompts for `base_url` are masked under DRAFT_PII_MASKING `mode`; ValueError on a bad mode."""
    if mode not in MODES:
        raise ValueError(f"PII masking must be one of {', '.join(MODES)}, not {mode!r}")
    return mode == "always" or (mode == "auto" and not is_local(base_url))
