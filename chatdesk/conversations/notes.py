"""Internal notes and tags on conversations (docs/notes.md): agents' own words about a conversation,
and short labels to find it again.

Both are for agents and managers only: they travel on the agents' conversation socket (frames `notes`,
`note`, `tags`), never on the customer's, and never reach a drafting engine (the engines read
messages only). Any agent may add them, also to a closed conversation or one another agent took over:
they change what the desk knows, not the conversation.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext

from chatdesk.conversations import realtime, selectors
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.inbound import normalise_text, refuse_too_long
from chatdesk.conversations.models import Conversation, ConversationTag, Note

TAG_MAX_CHARS = 40
TAGS_PER_CONVERSATION = 20

Frame = dict[str, object]


# -- checks ------------------------------------------------------------------


def check_note_text(text: object) -> str:
    """The note to store: NFC, trimmed, non-empty, at most CHAT_MAX_MESSAGE_CHARS code points."""
    if not isinstance(text, str):
        raise ServiceError("invalid_request", gettext("text must be a string."), field="text")
    text = normalise_text(text).strip()
    if not text:
        raise ServiceError("empty_message", gettext("Please type a note before adding it."), field="text")
    refuse_too_long(text, gettext("Notes can be at most %(limit)s characters; this one has %(length)s."), field="text")
    return text


def normalise_tag(tag: object) -> str:
    """A tag as stored: NFC, white space trimmed and runs of it made one space, lower case. Raises
    ServiceError `invalid_tag` when that leaves nothing or more than TAG_MAX_CHARS characters."""
    if not isinstance(tag, str):
        raise ServiceError("invalid_request", gettext("tag must be a string."), field="tag")
    name = " ".join(normalise_text(tag, name="tag").split()).lower()
    if not name or len(name) > TAG_MAX_CHARS:
        raise ServiceError(
            "invalid_tag",
            gettext("A tag is 1 to %(limit)s characters.") % {"limit": TAG_MAX_CHARS},
            limit=TAG_MAX_CHARS,
            field="tag",
        )
    return name


def _for_agent(public_id: uuid.UUID, agent: User) -> Conversation:
    """The conversation, row-locked (call inside a transaction); `not_found` for anyone but an agent."""
    if selectors.conversation_for_agent(user=agent, public_id=public_id) is None:
        raise ServiceError("not_found", gettext("This conversation does not exist."))
    conversation = Conversation.objects.select_for_update().filter(public_id=public_id).first()
    if conversation is None:
        raise ServiceError("not_found", gettext("This conversation does not exist."))
    return conversation


# -- writes ------------------------------------------------------------------


def note_add(*, public_id: uuid.UUID, agent: User, text: object) -> Note:
    """Store an agent's note; after commit every agent watching the conversation gets a `note` frame."""
    text = check_note_text(text)
    with transaction.atomic():
        conversation = _for_agent(public_id, agent)
        note = Note.objects.create(conversation=conversation, author=agent, text=text)
        realtime.agents_watching_told(public_id, [note_frame(note)])
    return note


def tag_add(*, public_id: uuid.UUID, agent: User, tag: object) -> list[str]:
    """Put the (normalised) tag on the conversation; adding one it has changes nothing. Returns the
    conversation's tags; after commit, agents watching get a `tags` frame. Raises `invalid_tag`, or
    `too_many_tags` beyond TAGS_PER_CONVERSATION (counted under the conversation's lock)."""
    name = normalise_tag(tag)
    with transaction.atomic():
        conversation = _for_agent(public_id, agent)
        names = conversation_tags(conversation)
        if name not in names:
            if len(names) >= TAGS_PER_CONVERSATION:
                raise ServiceError(
                    "too_many_tags",
                    gettext("A conversation can have at most %(limit)s tags.") % {"limit": TAGS_PER_CONVERSATION},
                    limit=TAGS_PER_CONVERSATION,
                )
            ConversationTag.objects.create(conversation=conversation, name=name, added_by=agent)
            names = sorted([*names, name])
        realtime.agents_watching_told(public_id, [tags_frame(names)])
    return names


def tag_remove(*, public_id: uuid.UUID, agent: User, tag: object) -> list[str]:
    """Take the (normalised) tag off the conversation; removing one it does not have changes nothing.
    Returns the conversation's tags; after commit, agents watching get a `tags` frame."""
    name = normalise_tag(tag)
    with transaction.atomic():
        conversation = _for_agent(public_id, agent)
        ConversationTag.objects.filter(conversation=conversation, name=name).delete()
        names = conversation_tags(conversation)
        realtime.agents_watching_told(public_id, [tags_frame(names)])
    return names


# -- reads -------------------------------------------------------------------


def conversation_tags(conversation: Conversation) -> list[str]:
    return sorted(ConversationTag.objects.filter(conversation=conversation).values_list("name", flat=True))


def tag_names(limit: int = 200) -> list[str]:
    """The tags in use, most used first (at most `limit`), for suggestions."""
    counted = ConversationTag.objects.values("name").annotate(uses=Count("pk")).order_by("-uses", "name")[:limit]
    return [row["name"] for row in counted]


def conversation_notes(conversation: Conversation) -> list[Note]:
    """Oldest first."""
    return list(Note.objects.filter(conversation=conversation).select_related("author").order_by("created_at", "pk"))


# -- frames (docs/protocol.md) ---------------------------------------------------


def note_fields(note: Note) -> Frame:
    author = note.author
    return {
        "id": note.pk,
        "author": (author.get_full_name() or author.get_username()) if author else None,
        "author_username": author.get_username() if author else None,
        "text": note.text,
        "created_at": note.created_at.isoformat(),
    }


def note_frame(note: Note) -> Frame:
    """One new note (at most CHAT_MAX_MESSAGE_CHARS: well below the frame limit)."""
    return {"type": "note", "note": note_fields(note)}


def tags_frame(names: list[str]) -> Frame:
    """The conversation's tags, all of them (at most 20 × 40 characters)."""
    return {"type": "tags", "tags": names}


def notes_frame(conversation: Conversation) -> Frame:
    """The snapshot's notes, oldest first: the newest that fit in half a websocket frame (`has_more`
    when older ones were left out; the transcript shows them all)."""
    every = conversation_notes(conversation)
    budget = settings.WS_MAX_FRAME_BYTES // 2
    kept: list[Frame] = []
    for note in reversed(every):
        fields = note_fields(note)
        budget -= len(json.dumps(fields)) + 2
        if budget < 0:
            break
        kept.append(fields)
    return {"type": "notes", "notes": kept[::-1], "has_more": len(kept) < len(every)}


def snapshot_frames(conversation: Conversation) -> list[Frame]:
    """What an agent's conversation socket gets after the conversation's own snapshot: notes, tags."""
    return [notes_frame(conversation), tags_frame(conversation_tags(conversation))]
