"""Topic and team writes for integrations (the REST API; managers also use the admin).

A topic belongs to at most one team (TeamTopic): escalations on it wait in that team's queue
(chatdesk.conversations.assignment). Deleting follows the models' on_delete: conversations, drafts and
taught replies lose their topic or team (SET_NULL) and keep working; a topic's team link, sensitive
rules and escalation threshold go with it; a topic that articles are filed under is refused (`in_use`).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _

from chatdesk.conversations import selectors
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Team, TeamTopic
from chatdesk.knowledge.models import Topic

NAME_MAX = 80

UNCHANGED = object()  # topic_update(team=UNCHANGED): leave the topic's team as it is


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise ServiceError(
            "invalid_request", _("name must be 1 to %(max)d characters.") % {"max": NAME_MAX}, field="name"
        )
    return name


def _confidence(value: float) -> float:
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ServiceError(
            "invalid_request",
            _("autopilot_min_confidence must be between 0 and 1."),
            field="autopilot_min_confidence",
        )
    return value


def _team(team: int | str) -> Team:
    """A team by id (int) or name (str); `invalid_request` on field `team` when there is none."""
    found = Team.objects.filter(pk=team) if isinstance(team, int) else Team.objects.filter(name=team)
    result = found.first()
    if result is None:
        raise ServiceError("invalid_request", _("There is no team %(team)s.") % {"team": repr(team)[:82]}, field="team")
    return result


def _set_team(topic: Topic, team: Team | None) -> None:
    """Move the topic into `team`'s queue (None: no team's, everyone's)."""
    if team is None:
        TeamTopic.objects.filter(topic=topic).delete()
    else:
        TeamTopic.objects.update_or_create(topic=topic, defaults={"team": team})


def _save_topic(topic: Topic) -> None:
    try:
        with transaction.atomic():
            topic.save()
    except IntegrityError:
        raise ServiceError(
            "conflict", _("A topic named %(name)s exists already.") % {"name": repr(topic.name)}, field="name"
        ) from None


def topic_create(
    *, name: str, autopilot: bool = False, autopilot_min_confidence: float = 0.8, team: int | str | None = None
) -> Topic:
    """Store a new topic, in `team`'s queue (by id or name) or everyone's. Raises ServiceError
    `invalid_request` (`field` names it) or `conflict` (the name is taken)."""
    topic = Topic(name=_name(name), autopilot=autopilot, autopilot_min_confidence=_confidence(autopilot_min_confidence))
    owner = _team(team) if team is not None else None
    with transaction.atomic():
        _save_topic(topic)
        _set_team(topic, owner)
    return topic


def topic_update(
    *,
    topic_id: int,
    name: str | None = None,
    autopilot: bool | None = None,
    autopilot_min_confidence: float | None = None,
    team: int | str | object | None = UNCHANGED,
) -> Topic:
    """Change the given fields (None: unchanged; `team` None moves it to everyone's queue). Raises
    ServiceError `not_found`, `invalid_request` or `conflict`."""
    topic = Topic.objects.filter(pk=topic_id).first()
    if topic is None:
        raise ServiceError("not_found", _("That topic does not exist."))
    if name is not None:
        topic.name = _name(name)
    if autopilot is not None:
        topic.autopilot = autopilot
    if autopilot_min_confidence is not None:
        topic.autopilot_min_confidence = _confidence(autopilot_min_confidence)
    owner = UNCHANGED
    if team is not UNCHANGED:
        owner = _team(team) if isinstance(team, int | str) else None
    with transaction.atomic():
        _save_topic(topic)
        if owner is not UNCHANGED:
            _set_team(topic, owner if isinstance(owner, Team) else None)
    return topic


def topic_delete(*, topic_id: int) -> None:
    """Delete a topic (see the module's docstring for what goes with it). Raises `not_found`, or `in_use`
    when knowledge-base articles are filed under it (move or delete them first)."""
    topic = Topic.objects.filter(pk=topic_id).first()
    if topic is None:
        raise ServiceError("not_found", _("That topic does not exist."))
    in_use = ServiceError(
        "in_use",
        _("Knowledge-base articles are filed under this topic; move or delete them first."),
        articles=topic.articles.count(),
    )
    if in_use.details["articles"]:
        raise in_use
    try:
        with transaction.atomic():
            topic.delete()
    except ProtectedError:  # filed under it since the count above
        raise in_use from None


def _members(usernames: list[str]) -> list[User]:
    wanted = set(usernames)
    people = list(selectors.agents_and_managers().filter(username__in=wanted))
    missing = wanted - {u.get_username() for u in people}
    if missing:
        raise ServiceError(
            "invalid_request",
            _("These are not active agents: %(names)s.") % {"names": ", ".join(sorted(missing))[:200]},
            field="members",
        )
    return people


def _topics(names: list[str], team: Team | None) -> list[Topic]:
    wanted = set(names)
    topics = list(Topic.objects.filter(name__in=wanted).select_related("team_topic__team"))
    missing = wanted - {t.name for t in topics}
    if missing:
        raise ServiceError(
            "invalid_request",
            _("There are no topics %(names)s.") % {"names": ", ".join(sorted(missing))[:200]},
            field="topics",
        )
    for topic in topics:
        link = getattr(topic, "team_topic", None)
        if link is not None and (team is None or link.team_id != team.pk):
            # A topic has one team; moving it is the topic's own change (PATCH /topics/{id}).
            raise ServiceError(
                "conflict",
                _("The topic %(topic)s belongs to the team %(team)s.") % {"topic": topic.name, "team": link.team.name},
                field="topics",
            )
    return topics


def _save_team(team: Team, members: list[User] | None, topics: list[Topic] | None) -> Team:
    try:
        with transaction.atomic():
            team.save()
            if members is not None:
                team.members.set(members)
            if topics is not None:
                TeamTopic.objects.filter(team=team).exclude(topic__in=topics).delete()
                for topic in topics:
                    TeamTopic.objects.get_or_create(team=team, topic=topic)
    except IntegrityError:
        raise ServiceError(
            "conflict", _("A team named %(name)s exists already.") % {"name": repr(team.name)}, field="name"
        ) from None
    return team


def team_create(*, name: str, members: list[str], topics: list[str]) -> Team:
    """Store a new team with these members (active agents' usernames) and topics (names of topics in no
    other team's queue). Raises ServiceError `invalid_request` (`field` names it) or `conflict` (the name
    is taken, or a topic is another team's)."""
    team = Team(name=_name(name))
    return _save_team(team, _members(members), _topics(topics, None))


def team_update(
    *, team_id: int, name: str | None = None, members: list[str] | None = None, topics: list[str] | None = None
) -> Team:
    """Change the given fields (None: unchanged); members and topics replace the old lists. Raises
    ServiceError `not_found`, `invalid_request` or `conflict`."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise ServiceError("not_found", _("That team does not exist."))
    if name is not None:
        team.name = _name(name)
    people = _members(members) if members is not None else None
    chosen = _topics(topics, team) if topics is not None else None
    return _save_team(team, people, chosen)


def team_delete(*, team_id: int) -> None:
    """Delete a team: its conversations wait in everyone's queue (Conversation.team is SET_NULL) and its
    topics belong to no team. Raises `not_found`."""
    deleted, _counts = Team.objects.filter(pk=team_id).delete()
    if not deleted:
        raise ServiceError("not_found", _("That team does not exist."))
