"""The preferences page: a person's language and time zone are saved, refused values are explained at their
field, and the chosen time zone is what the desk's pages (and their scripts) show times in."""

from __future__ import annotations

from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.accounts.models import Profile

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_time_zone_and_language_are_saved(agent: User) -> None:
    client = signed_in(agent)
    answer = client.post("/accounts/preferences/", {"time_zone": "Asia/Shanghai", "language": "en"})
    assert answer.status_code == 302 and answer["Location"] == "/accounts/preferences/"
    assert Profile.objects.get(user=agent).time_zone == "Asia/Shanghai"
    page = client.get("/accounts/preferences/").content.decode()
    assert 'value="Asia/Shanghai"' in page and "Your preferences are saved." in page
    assert 'data-time-zone="Asia/Shanghai"' in page  # for the times the page's scripts draw


def test_an_unknown_time_zone_is_explained_at_its_field_and_nothing_is_saved(agent: User) -> None:
    Profile.objects.create(user=agent, time_zone="Europe/Paris")
    answer = signed_in(agent).post("/accounts/preferences/", {"time_zone": "Mars/Olympus_Mons", "language": ""})
    page = unescape(answer.content.decode())
    assert answer.status_code == 400
    assert (
        '<p class="field-error" id="time-zone-error" data-testid="time-zone-error">'
        "Unknown time zone 'Mars/Olympus_Mons'; choose one from the list, e.g. Europe/Paris.</p>"
    ) in page
    assert 'value="Mars/Olympus_Mons"' in page and 'aria-invalid="true"' in page  # kept, to correct it
    assert 'aria-describedby="time-zone-error time-zone-help"' in page
    assert Profile.objects.get(user=agent).time_zone == "Europe/Paris"


def test_an_unknown_language_is_explained_at_its_field(agent: User) -> None:
    answer = signed_in(agent).post("/accounts/preferences/", {"time_zone": "", "language": "fr"})
    page = answer.content.decode()
    assert answer.status_code == 400 and 'data-testid="language-error">Choose one of the languages' in page
    assert not Profile.objects.filter(user=agent).exists()


def test_without_a_choice_pages_use_the_desks_time_zone(agent: User) -> None:
    page = signed_in(agent).get("/agents/").content.decode()
    assert 'data-time-zone="UTC"' in page
