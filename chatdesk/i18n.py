"""Which of the desk's languages (settings.LANGUAGES) to answer someone in, where Django's request
machinery does not decide it: websockets (their handshake's Accept-Language header)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header


def language_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The first language of an ASGI scope's Accept-Language header that the desk speaks (zh-CN →
    zh-hans), else settings.LANGUAGE_CODE."""
    for name, value in headers:
        if name.lower() != b"accept-language":
            continue
        for tag, _quality in parse_accept_lang_header(value.decode("latin-1")):
            if tag == "*":
                break
            try:
                return translation.get_supported_language_variant(tag)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE
