"""The one gate every inbound websocket frame passes before any service sees it.

In order: the size is bounded before parsing (Daphne closes a frame over WS_MAX_FRAME_BYTES with
1009; `parse` refuses anything longer that reaches it), the JSON must be one object with a known
`"type"` and bounded nesting, then every field is checked strictly against its spec: booleans are
not numbers, `null` is accepted only for optional fields, numbers are bounded. Every string is
normalised to NFC and refused when it cannot be stored (an unpaired surrogate such as "\\ud83d", or
NUL, which neither UTF-8 storage nor PostgreSQL text accepts). Unknown fields are ignored, as
docs/protocol.md promises clients in both directions.

A refusal is a ServiceError whose code is the protocol's (`invalid_frame`, `unknown_type`,
`invalid_request`, `invalid_text`); the connection stays open.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.utils.translation import gettext

from chatdesk.conversations.errors import ServiceError

# Sequence numbers and ids are stored in 32-bit columns; larger values could only ever be wrong.
MAX_NUMBER = 2**31 - 1
MAX_REQUEST_ID_CHARS = 64


@dataclass(frozen=True)
class Field:
    """One field of a frame: its JSON type, whether it must be present, and its bounds.

    kind: "string"; "number" (a whole number in [minimum, maximum]); "boolean"; "id" (a string of at
    most 64 characters or a whole number, as `request_id` is); "object" (a JSON object whose fields are
    checked against `fields`, each named "<field>.<name>" in errors; other keys are ignored).
    """

    kind: Literal["string", "number", "boolean", "id", "object"]
    required: bool = False
    minimum: int = 0
    maximum: int = MAX_NUMBER
    fields: dict[str, Field] | None = None


FrameSpec = dict[str, Field]

# Fields every frame may carry: echoed in the answer so a client can match it to its request.
COMMON: FrameSpec = {"request_id": Field("id")}


def parse(raw: str | None, specs: dict[str, FrameSpec]) -> tuple[str, dict[str, Any]]:
    """Check one text frame against the endpoint's frame specs.

    Returns (type, fields) where fields holds only the spec's fields (absent optional ones as None),
    each of its declared type and bounds. Raises ServiceError with a protocol error code otherwise.
    """
    if raw is None:
        raise ServiceError("invalid_frame", gettext("Frames must be JSON text, not binary."))
    if len(raw) > settings.WS_MAX_FRAME_BYTES:
        raise ServiceError("invalid_frame", gettext("This frame is too large."), limit=settings.WS_MAX_FRAME_BYTES)
    try:
        content = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ServiceError("invalid_frame", gettext("Frames must not be nested this deeply.")) from None
    except ValueError:
        raise ServiceError("invalid_frame", gettext("Frames must be JSON objects.")) from None
    if not isinstance(content, dict) or not isinstance(content.get("type"), str):
        raise ServiceError("invalid_frame", gettext('Frames must be JSON objects with a "type".'))
    kind = content["type"]
    spec = specs.get(kind)
    if spec is None:
        raise ServiceError(
            "unknown_type",
            gettext("Unknown frame type %(kind)r; this connection accepts %(kinds)s.")
            % {"kind": kind[:40], "kinds": ", ".join(specs)},
        )
    return kind, {name: _check(name, content.get(name), field) for name, field in {**COMMON, **spec}.items()}


def echo_fields(raw: str | None) -> dict[str, Any]:
    """`request_id` and `client_id` of a refused frame, when they are valid, for the error frame."""
    try:
        content = json.loads(raw or "", parse_constant=_refuse_constant)
    except (RecursionError, ValueError):
        return {}
    if not isinstance(content, dict):
        return {}
    echoed = {}
    for name in ("request_id", "client_id"):
        value = content.get(name)
        if (isinstance(value, str) and len(value) <= MAX_REQUEST_ID_CHARS and _storable(value)) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_NUMBER
        ):
            echoed[name] = value
    return echoed


def normalise_text(value: str, *, name: str = "text") -> str:
    """NFC form of a text a person typed; ServiceError `invalid_text` when it cannot be stored."""
    if not _storable(value):
        raise ServiceError(
            "invalid_text",
            gettext(
                "%(field)s contains characters that cannot be stored (an unpaired surrogate or NUL). "
                "Please send valid Unicode text."
            )
            % {"field": name},
            field=name,
        )
    return unicodedata.normalize("NFC", value)


def refuse_too_long(text: str, message: str, *, field: str | None = None) -> None:
    """ServiceError `message_too_long` (with `limit`, and `field` when given) if `text` has more than
    CHAT_MAX_MESSAGE_CHARS code points; `message` is a translated text with %(limit)s and %(length)s."""
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        extra: dict[str, Any] = {"field": field} if field else {}
        raise ServiceError(
            "message_too_long", message % {"limit": f"{limit:,}", "length": f"{len(text):,}"}, limit=limit, **extra
        )


def _check(name: str, value: Any, field: Field) -> Any:
    if value is None:
        if field.required:
            raise ServiceError("invalid_request", gettext("%(field)s is required.") % {"field": name}, field=name)
        return None
    if field.kind == "object":
        if not isinstance(value, dict):
            raise ServiceError("invalid_request", gettext("%(field)s must be an object.") % {"field": name}, field=name)
        return {key: _check(f"{name}.{key}", value.get(key), spec) for key, spec in (field.fields or {}).items()}
    if isinstance(value, str) and field.kind in ("string", "id"):
        if field.kind == "id" and len(value) > MAX_REQUEST_ID_CHARS:
            raise ServiceError(
                "invalid_request",
                gettext("%(field)s must be at most %(limit)s characters.")
                % {"field": name, "limit": MAX_REQUEST_ID_CHARS},
            )
        return normalise_text(value, name=name)
    if field.kind == "string":
        raise ServiceError("invalid_request", gettext("%(field)s must be a string.") % {"field": name}, field=name)
    if field.kind == "boolean":
        if not isinstance(value, bool):
            raise ServiceError(
                "invalid_request", gettext("%(field)s must be true or false.") % {"field": name}, field=name
            )
        return value
    # A whole number: JSON true/false are not numbers, whatever Python's bool/int relation says.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ServiceError(
            "invalid_request", gettext("%(field)s must be a whole number.") % {"field": name}, field=name
        )
    if not field.minimum <= value <= field.maximum:
        raise ServiceError(
            "invalid_request",
            gettext("%(field)s must be between %(minimum)s and %(maximum)s.")
            % {"field": name, "minimum": field.minimum, "maximum": field.maximum},
            field=name,
        )
    return value


def _storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
