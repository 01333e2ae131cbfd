"""Per-client-address rate limits shared by every Daphne process (fixed windows in Django's Redis cache).

Limits per socket live in the consumer's memory (a socket is served by one process); limits per
client address must hold however many sockets and processes an address spreads over, hence Redis.
Behind a proxy the address is the one Daphne reads from X-Forwarded-For with `--proxy-headers`.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.utils.translation import gettext, gettext_lazy

from chatdesk.conversations.errors import ServiceError

MESSAGES = {
    "hello": gettext_lazy("Too many connections from your network. Please wait a moment and try again."),
    "message": gettext_lazy("Too many messages from your network. Please wait a moment and try again."),
    "conversation": gettext_lazy("Too many new conversations from your network. Please try again later."),
    "api": gettext_lazy(
        "Too many requests with this API token. Please wait as long as Retry-After says and try again."
    ),
}


def check(kind: str, address: str, *, limit: int, window_s: int) -> None:
    """Count one `kind` event from `address`; raise ServiceError `rate_limited` (with `retry_after`, in
    seconds) once more than `limit` happened in the current window of `window_s` seconds. A limit of 0
    turns the check off; so does an empty address (calls from inside the desk, not from a client)."""
    if limit <= 0 or not address:
        return
    now = time.time()
    window = int(now // window_s)
    key = f"throttle:{kind}:{address}:{window}"
    cache.add(key, 0, timeout=window_s + 1)
    if cache.incr(key) > limit:
        raise ServiceError(
            "rate_limited",
            str(MESSAGES.get(kind) or gettext("Too many requests.")),
            retry_after=max(1, round((window + 1) * window_s - now)),
        )
