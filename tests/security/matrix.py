"""Who may open what: every URL and websocket endpoint of the desk, and what each kind of visitor gets.

tests/security/test_authorization_matrix.py checks every cell and that no URL exists outside this table;
test_content_security_policy.py visits the same URLs for the CSP header.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from chatdesk import health
from chatdesk.api.tokens import token_create
from chatdesk.canned.models import CannedReply
from chatdesk.conversations import services
from chatdesk.conversations.models import AgentAction, Conversation, CustomerNotice, Draft, SensitiveRule, Team
from chatdesk.conversations.roles import groups_ensure
from chatdesk.conversations.tokens import conversation_token
from chatdesk.knowledge.models import (
    ApprovedReply,
    Article,
    ClassifierVersion,
    EscalationPolicy,
    EscalationThreshold,
    OutOfScopeExample,
    Topic,
)
from chatdesk.knowledge.services import knowledge_seed_demo
from chatdesk.webhooks.models import Delivery, Endpoint
from chatdesk.widget_sites.models import WidgetSite
from tests.conftest import PASSWORD, say

PERSONAS = ("anonymous", "customer_a", "customer_b", "agent", "deactivated_agent", "manager", "superuser")

# What a visitor gets: a status code, or a redirect to one of the two sign-in pages.
OK, FORBIDDEN, NOT_FOUND, NOT_ALLOWED, REDIRECT = "200", "403", "404", "405", "302"
UNAUTHORIZED = "401"  # the REST API: sessions do not count there, only an API token (tests/api)
LOGIN, ADMIN_LOGIN = "login", "admin-login"


def cells(
    everyone: str, *, agent: str | None = None, manager: str | None = None, superuser: str | None = None
) -> dict[str, str]:
    """Customers (who hold a conversation token but no session) and deactivated agents count as anonymous."""
    agent = agent or everyone
    manager = manager or agent
    return {
        "anonymous": everyone,
        "customer_a": everyone,
        "customer_b": everyone,
        "agent": agent,
        "deactivated_agent": everyone,
        "manager": manager,
        "superuser": superuser or manager,
    }


STAFF_ONLY = cells(ADMIN_LOGIN, manager=OK)
MANAGED = STAFF_ONLY  # models managers edit: knowledge, users, groups, sensitive-topic rules
SUPERUSER_ONLY = cells(ADMIN_LOGIN, manager=FORBIDDEN, superuser=OK)
NOBODY = cells(ADMIN_LOGIN, manager=FORBIDDEN)  # refused even to superusers (read-only models)


def model_routes(
    app_model: str, *, add: dict[str, str], change: dict[str, str], delete: dict[str, str]
) -> dict[str, dict[str, str]]:
    listing = change if change != NOBODY else STAFF_ONLY
    base = f"admin/{app_model}/"
    return {
        base: listing,
        f"{base}add/": add,
        f"{base}<path:object_id>/history/": listing,
        f"{base}<path:object_id>/delete/": delete,
        f"{base}<path:object_id>/change/": listing,
        f"{base}<path:object_id>/": cells(ADMIN_LOGIN, manager=REDIRECT),  # to .../change/, checked there
    }


MATRIX: dict[str, dict[str, str]] = {
    "": cells(OK),  # the demo shop with the widget
    "healthz": cells(OK),
    "readyz": cells(OK),  # public, like healthz (build_world stamps a worker as seen)
    "metrics": cells(NOT_FOUND),  # off until METRICS_TOKEN or METRICS_ALLOWED_NETWORKS is set; then no session opens it
    "accounts/login/": cells(OK),
    "accounts/logout/": cells(NOT_ALLOWED),  # GET; signing out is a POST
    "accounts/preferences/": cells(LOGIN, agent=OK),  # anyone signed in: their own language and time zone
    "jsi18n/": cells(OK),  # the desk's JavaScript wording, public like the scripts themselves
    "jsi18n/widget/<str:language>.json": cells(OK),  # the widget's wording, read from any site
    "agents/": cells(LOGIN, agent=OK),
    "agents/c/<uuid:public_id>/": cells(LOGIN, agent=OK),
    "agents/inbox/": cells(LOGIN, agent=OK),
    "agents/inbox/assign/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; assigning is a POST
    "agents/next/": cells(LOGIN, agent=REDIRECT),  # to the next conversation in the agent's queue
    "agents/canned/": cells(LOGIN, agent=OK),
    "agents/canned/<int:canned_id>/": cells(LOGIN, agent=FORBIDDEN, manager=OK),  # a shared reply: managers change it
    "agents/canned/<int:canned_id>/delete/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; deleting is a POST
    "reports/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "reports/conversations/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "reports/conversations/<uuid:public_id>/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "reports/export/conversations.csv": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "reports/export/drafts.csv": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "reports/time-zone/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; saving is a POST
    "knowledge/out-of-scope/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "knowledge/memory/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "knowledge/memory/<int:reply_id>/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; a review is a POST
    "webhooks/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "webhooks/new/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "webhooks/<int:endpoint_id>/": cells(LOGIN, agent=FORBIDDEN, manager=OK),  # shows the signing secret
    "webhooks/<int:endpoint_id>/state/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; enabling is a POST
    "webhooks/deliveries/<int:delivery_id>/replay/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; a replay is a POST
    "api-tokens/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "sites/": cells(LOGIN, agent=FORBIDDEN, manager=OK),
    "sites/<int:site_id>/": cells(LOGIN, agent=FORBIDDEN, manager=OK),  # shows the identity secret
    "sites/<int:site_id>/origins/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; setting the origins is a POST
    "sites/<int:site_id>/rotate/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; rotating is a POST
    "sites/<int:site_id>/delete/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; deleting is a POST
    "api-tokens/<int:token_id>/revoke/": cells(LOGIN, agent=NOT_ALLOWED),  # GET; revoking is a POST
    # The REST API: its schema and docs are public; every resource needs a token (none here: 401).
    "api/v1/": cells(NOT_FOUND),
    "api/v1/openapi.json": cells(OK),
    "api/v1/docs": cells(OK),
    "api/v1/conversations": cells(UNAUTHORIZED),
    "api/v1/conversations/<public_id>": cells(UNAUTHORIZED),
    "api/v1/conversations/<public_id>/messages": cells(NOT_ALLOWED),  # GET; a reply is a POST
    "api/v1/conversations/<public_id>/drafts": cells(NOT_ALLOWED),  # GET; a draft is a POST
    "api/v1/articles": cells(UNAUTHORIZED),
    "api/v1/articles/<int:article_id>": cells(UNAUTHORIZED),
    "api/v1/topics": cells(UNAUTHORIZED),
    "api/v1/topics/<int:topic_id>": cells(UNAUTHORIZED),
    "api/v1/teams": cells(UNAUTHORIZED),
    "api/v1/teams/<int:team_id>": cells(UNAUTHORIZED),
    "api/v1/agents": cells(UNAUTHORIZED),
    "api/v1/reports/metrics": cells(UNAUTHORIZED),
    "api/v1/reports/conversations.csv": cells(UNAUTHORIZED),
    "api/v1/reports/drafts.csv": cells(UNAUTHORIZED),
    "api/v1/<path:rest>": cells(NOT_FOUND),  # any other path under the API: a JSON not_found
    "admin/": STAFF_ONLY,
    "admin/login/": cells(OK, manager=REDIRECT),  # staff are sent on to the admin
    "admin/logout/": cells(REDIRECT, manager=NOT_ALLOWED),  # GET: to the admin index (then its login); staff: POST only
    "admin/password_change/": STAFF_ONLY,
    "admin/password_change/done/": STAFF_ONLY,
    "admin/autocomplete/": cells(ADMIN_LOGIN, manager=FORBIDDEN),  # refused without its query
    "admin/jsi18n/": STAFF_ONLY,
    "admin/r/<path:content_type_id>/<path:object_id>/": cells(ADMIN_LOGIN, manager=NOT_FOUND),  # no public URLs
    "admin/^(?P<app_label>knowledge|conversations|auth)/$": STAFF_ONLY,
    "admin/(?P<url>.*)$": cells(ADMIN_LOGIN, manager=NOT_FOUND),
    "admin/auth/user/<id>/password/": MANAGED,
    **model_routes("knowledge/topic", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("knowledge/article", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("knowledge/approvedreply", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("knowledge/classifierversion", add=NOBODY, change=STAFF_ONLY, delete=NOBODY),
    **model_routes("knowledge/outofscopeexample", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("knowledge/escalationpolicy", add=NOBODY, change=MANAGED, delete=MANAGED),  # one row, exists
    **model_routes("knowledge/escalationthreshold", add=NOBODY, change=STAFF_ONLY, delete=NOBODY),
    **model_routes("conversations/conversation", add=SUPERUSER_ONLY, change=SUPERUSER_ONLY, delete=SUPERUSER_ONLY),
    **model_routes("conversations/draft", add=SUPERUSER_ONLY, change=SUPERUSER_ONLY, delete=SUPERUSER_ONLY),
    **model_routes("conversations/agentaction", add=SUPERUSER_ONLY, change=SUPERUSER_ONLY, delete=SUPERUSER_ONLY),
    **model_routes("conversations/sensitiverule", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("conversations/customernotice", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("conversations/team", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("auth/user", add=MANAGED, change=MANAGED, delete=MANAGED),
    **model_routes("auth/group", add=MANAGED, change=MANAGED, delete=MANAGED),
}

# Websocket endpoints: what each visitor gets on connecting (and, on /ws/chat/, on sending hello with the
# token they hold). "own" is a welcome for their own conversation (customers) or a new one (everyone
# else); "4403"/"4404" an error frame then that close code; "snapshot" the queue or the conversation.
WS_MATRIX: dict[str, dict[str, str]] = {
    "ws/chat/": cells("own"),
    "ws/agents/queue/": cells("4403", agent="snapshot"),
    "ws/agents/conversations/<uuid:public_id>/": cells("4403", agent="snapshot"),
    "": cells("4404"),  # any other path, a malformed conversation id included: not_found, for everyone
}


def url_routes() -> Iterator[str]:
    """Every route of the URL configuration, includes joined, as Django prints it."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return walk(get_resolver().url_patterns, "")


@dataclass
class World:
    """A customer A and a customer B with a conversation each, and every kind of visitor."""

    a: Conversation
    b: Conversation
    users: dict[str, User]
    tokens: dict[str, str]
    objects: dict[str, Any]

    def url(self, route: str) -> str:
        """A concrete URL for `route`: A's conversation, an existing object of the admin's model."""
        if route == "admin/^(?P<app_label>knowledge|conversations|auth)/$":
            return "/admin/knowledge/"
        if route == "admin/(?P<url>.*)$":
            return "/admin/no-such-page/"
        if route.startswith("admin/r/"):
            return f"/admin/r/{ContentType.objects.get_for_model(Topic).pk}/{self.objects['knowledge/topic'].pk}/"
        url = route.replace("<uuid:public_id>", str(self.a.public_id))
        url = url.replace("<int:reply_id>", str(self.objects["knowledge/approvedreply"].pk))
        url = url.replace("<int:endpoint_id>", str(self.objects["webhooks/endpoint"].pk))
        url = url.replace("<int:delivery_id>", str(self.objects["webhooks/delivery"].pk))
        url = url.replace("<public_id>", str(self.a.public_id)).replace("<path:rest>", "no-such-thing")
        url = url.replace("<int:article_id>", str(self.objects["knowledge/article"].pk))
        url = url.replace("<int:topic_id>", str(self.objects["knowledge/topic"].pk))
        url = url.replace("<int:team_id>", str(self.objects["conversations/team"].pk))
        url = url.replace("<int:canned_id>", str(self.objects["canned/cannedreply"].pk))
        url = url.replace("<int:token_id>", str(self.objects["api/token"].pk))
        url = url.replace("<int:site_id>", str(self.objects["widget_sites/site"].pk))
        url = url.replace("<str:language>", "zh-CN")
        if "<path:object_id>" in url or "<id>" in url:
            model = "/".join(route.split("/")[1:3])
            url = url.replace("<path:object_id>", str(self.objects[model].pk)).replace(
                "<id>", str(self.objects[model].pk)
            )
        return "/" + url


A_TEXT = "My order A-1234 never arrived"
B_TEXT = "Do you ship to Norway?"


def build_world() -> World:
    """Call inside a test with database access."""
    agents, managers = groups_ensure()
    knowledge_seed_demo()

    def person(username: str, group: Group | None, **flags: Any) -> User:
        user = User.objects.create_user(username=username, password=PASSWORD, **flags)
        if group:
            user.groups.add(group)
        return user

    users = {
        "agent": person("alice", agents),
        "deactivated_agent": person("dora", agents, is_active=False),
        "manager": person("mona", managers, is_staff=True),
        "superuser": User.objects.create_superuser("root", "root@example.com", PASSWORD),
    }
    a, b = services.conversation_start(), services.conversation_start()
    say(a, A_TEXT)
    say(b, B_TEXT)
    services.conversation_take_over(public_id=a.public_id, agent=users["agent"])
    topic = Topic.objects.first()
    objects: dict[str, Any] = {
        "knowledge/topic": topic,
        "knowledge/article": Article.objects.first(),
        "knowledge/approvedreply": ApprovedReply.objects.create(customer_text="hi", reply_text="hello", topic=topic),
        "knowledge/classifierversion": ClassifierVersion.objects.create(
            examples=0, topics=0, held_back_accuracy=0.0, arrays=b"", meta={}
        ),
        "knowledge/outofscopeexample": OutOfScopeExample.objects.create(text="can i pay with bitcoin", source="import"),
        "knowledge/escalationpolicy": EscalationPolicy.objects.create(target_precision=0.95),
        "knowledge/escalationthreshold": EscalationThreshold.objects.create(
            threshold=0.5,
            target_precision=0.97,
            precision=0.97,
            coverage=0.8,
            answered=8,
            escalated=2,
            n=10,
            computed_at=timezone.now(),
        ),
        "conversations/conversation": a,
        "conversations/draft": Draft.objects.filter(conversation=a).first(),
        "conversations/agentaction": AgentAction.objects.filter(conversation=a).first(),
        "conversations/sensitiverule": SensitiveRule.objects.create(phrase="chargeback", note="Payment dispute"),
        "conversations/customernotice": CustomerNotice.objects.create(
            code=CustomerNotice.Code.WAITING_FOR_AGENT, language="en", text="One moment, a person is coming."
        ),
        "conversations/team": Team.objects.create(name="Billing"),
        "auth/user": users["agent"],
        "auth/group": agents,
        "canned/cannedreply": CannedReply.objects.create(shortcut="hello", text="Hello!", created_by=users["manager"]),
        "api/token": token_create(manager=users["manager"], name="matrix", scope="read")[0],
        "widget_sites/site": WidgetSite.objects.create(name="Shop"),
    }
    endpoint = Endpoint.objects.create(url="https://crm.example.com/chatdesk", events=["conversation.created"])
    objects["webhooks/endpoint"] = endpoint
    objects["webhooks/delivery"] = Delivery.objects.create(
        endpoint=endpoint, event_id=uuid.uuid4(), event_type="conversation.created", body="{}"
    )
    tokens = {"customer_a": conversation_token(a.public_id), "customer_b": conversation_token(b.public_id)}
    health.worker_seen_now()
    return World(a=a, b=b, users=users, tokens=tokens, objects=objects)
