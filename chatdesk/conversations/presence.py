"""Who is at the desk: agents' presence from their dashboard sockets (see AgentSocket).

States: `online` (a live socket in a visible tab), `away` (live sockets, all in hidden tabs),
`offline` (none, for longer than AGENT_OFFLINE_GRACE_S). Every function takes `now` so tests drive
the clock instead of sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from chatdesk.conversations.models import AgentSocket

ONLINE, AWAY, OFFLINE = "online", "away", "offline"


def socket_opened(agent: User, channel_name: str, *, now: datetime | None = None) -> None:
    """An agent's dashboard socket connected; their rows long gone are dropped on the way."""
    now = now or timezone.now()
    AgentSocket.objects.filter(agent=agent).exclude(_counting(now)).delete()
    AgentSocket.objects.update_or_create(
        channel_name=channel_name, defaults={"agent": agent, "last_seen": now, "closed_at": None, "away": False}
    )


def socket_seen(channel_name: str, *, away: bool | None = None, now: datetime | None = None) -> None:
    """The socket sent something (a ping every 25 s at least); `away` when the client says its tab is
    hidden (True) or visible again (False)."""
    fields: dict[str, object] = {"last_seen": now or timezone.now()}
    if away is not None:
        fields["away"] = away
    AgentSocket.objects.filter(channel_name=channel_name, closed_at__isnull=True).update(**fields)


def socket_viewing(channel_name: str, conversation_id: int) -> None:
    """The socket shows this conversation (the agent's conversation page)."""
    AgentSocket.objects.filter(channel_name=channel_name).update(conversation_id=conversation_id)


def viewers(conversation_id: int, *, now: datetime | None = None) -> list[User]:
    """Agents with the conversation open right now, by name."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.AGENT_PRESENCE_STALE_S)
    ids = AgentSocket.objects.filter(conversation_id=conversation_id, closed_at__isnull=True, last_seen__gte=stale)
    return list(User.objects.filter(pk__in=ids.values("agent_id")).order_by("first_name", "username"))


def socket_closed(channel_name: str, *, now: datetime | None = None) -> None:
    AgentSocket.objects.filter(channel_name=channel_name).update(closed_at=now or timezone.now())


def _counting(now: datetime) -> Q:
    """Sockets that still say something about presence at `now`."""
    live = Q(closed_at__isnull=True, last_seen__gte=now - timedelta(seconds=settings.AGENT_PRESENCE_STALE_S))
    recently_closed = Q(closed_at__gte=now - timedelta(seconds=settings.AGENT_OFFLINE_GRACE_S))
    return live | recently_closed


def agent_states(*, now: datetime | None = None) -> dict[int, str]:
    """{agent id: online | away} for every agent not offline at `now` (one query)."""
    states: dict[int, str] = {}
    rows = AgentSocket.objects.filter(_counting(now or timezone.now()), agent__is_active=True)
    for agent_id, away in rows.values_list("agent_id", "away"):
        if not away or agent_id not in states:
            states[agent_id] = AWAY if away else ONLINE
    return states


def agent_state(agent: User, *, now: datetime | None = None) -> str:
    return agent_states(now=now).get(agent.pk, OFFLINE)


def anyone_online(*, now: datetime | None = None) -> bool:
    """Whether an agent is at the desk with a visible dashboard (what the customer is told)."""
    return ONLINE in agent_states(now=now).values()
