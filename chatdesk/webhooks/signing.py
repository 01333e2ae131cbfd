"""How a delivery is signed (docs/webhooks.md, "Verifying a delivery").

The signature is HMAC-SHA256, keyed with the endpoint's secret, over `<timestamp>.<body>`: the Unix time
of the attempt in seconds, a full stop, and the exact bytes of the request body. It is sent as
`X-ChatDesk-Signature: t=<timestamp>,v1=<hex digest>`. Signing the timestamp lets a receiver refuse a
delivery recorded and sent again later (a replay) by checking that it is recent.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-ChatDesk-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret` (its UTF-8 bytes)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ChatDesk-Signature value: `t=<timestamp>,v1=<signature>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
