"""Who can open which page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation
from chatdesk.knowledge.models import ClassifierVersion

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_sends_anonymous_visitors_to_the_login_page() -> None:
    response = Client().get("/agents/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_signed_in_user_who_is_no_agent_is_refused(outsider: User) -> None:
    assert signed_in(outsider).get("/agents/").status_code == 403


def test_agents_see_the_queue_and_a_conversation(agent: User) -> None:
    client = signed_in(agent)
    assert client.get("/agents/").status_code == 200
    conversation = services.conversation_start()
    page = client.get(f"/agents/c/{conversation.public_id}/")
    assert page.status_code == 200
    assert conversation.customer_label in page.content.decode()


def test_an_unknown_conversation_is_not_found(agent: User) -> None:
    assert signed_in(agent).get("/agents/c/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_reports_are_for_managers_only(agent: User, manager: User) -> None:
    conversation = services.conversation_start()
    services.customer_message_post(
        public_id=conversation.public_id, text="talk to a human, this is ridiculous!", client_id="m-1"
    )
    assert signed_in(agent).get("/reports/").status_code == 403
    assert signed_in(manager).get("/reports/").status_code == 200
    # Reports count a conversation from its first customer message (recorded by the services).
    first = conversation.messages.get(seq=1).created_at
    Conversation.objects.filter(pk=conversation.pk).update(first_customer_at=first)
    listing = signed_in(manager).get("/reports/conversations/")
    assert listing.status_code == 200
    assert conversation.customer_label in listing.content.decode()
    # Every reason that fired is in the list, handled or not.
    services.conversation_close(public_id=conversation.public_id, agent=agent)
    row = signed_in(manager).get("/reports/conversations/").content.decode()
    assert "Customer asked for a person; " in row and "Angry or distressed customer" in row


def test_the_demo_shop_embeds_the_widget_with_one_script_tag() -> None:
    page = Client().get("/").content.decode()
    assert page.count('src="/static/js/widget.js"') == 1


def test_managers_can_edit_the_knowledge_base_in_the_admin(manager: User, knowledge: None) -> None:
    manager.is_staff = True
    manager.save()
    client = signed_in(manager)
    assert client.get("/admin/knowledge/article/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_a_migrated_database_has_the_agent_and_manager_roles_without_demo_data() -> None:
    assert Group.objects.filter(name="agents").exists()
    managers = Group.objects.get(name="managers").permissions.values_list("codename", flat=True)
    assert {"change_article", "change_topic", "view_classifierversion", "add_user"} <= set(managers)


def test_managers_see_the_classifier_versions_training_made_but_cannot_change_them(manager: User) -> None:
    manager.is_staff = True
    manager.save()
    version = ClassifierVersion.objects.create(
        examples=120, topics=4, held_back_accuracy=0.9321, previous_accuracy=0.9, arrays=b"x", meta={}, is_active=True
    )
    client = signed_in(manager)
    listing = client.get("/admin/knowledge/classifierversion/").content.decode()
    assert "0.9321" in listing
    assert client.get(f"/admin/knowledge/classifierversion/{version.pk}/change/").status_code == 200  # view only
    assert client.get("/admin/knowledge/classifierversion/add/").status_code == 403
    assert client.post(f"/admin/knowledge/classifierversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ClassifierVersion.objects.filter(pk=version.pk, is_active=True).exists()
