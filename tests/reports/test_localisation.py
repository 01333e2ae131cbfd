"""Report pages write times in the manager's time zone and numbers and dates the way their language does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from django.test import Client
from django.utils import translation

from chatdesk.accounts.models import Profile
from chatdesk.conversations.models import Draft
from chatdesk.reports.pages import fmt_int, fmt_seconds, fmt_share
from tests.reports.conftest import RANGE, History

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site_language_after() -> Iterator[None]:
    """The test client runs requests in this thread: a Chinese page leaves Chinese active for what follows."""
    yield
    translation.deactivate()


def manager_page(history: History, path: str, *, language: str, time_zone: str) -> str:
    Profile.objects.update_or_create(user=history.manager, defaults={"language": language, "time_zone": time_zone})
    client = Client()
    client.force_login(history.manager)
    return unescape(client.get(path).content.decode())


def test_a_chinese_speaking_manager_in_shanghai_reads_times_in_shanghai_in_chinese(history: History) -> None:
    # c1's customer wrote at 14:00:00Z on 10 November: 22:00 in Shanghai (UTC+8), 09:00 in New York.
    c1 = history.c["c1"]
    transcript = manager_page(
        history, f"/reports/conversations/{c1.public_id}/", language="zh-hans", time_zone="Asia/Shanghai"
    )
    assert '<time datetime="2026-11-10T22:00:00+08:00" class="muted">2026年11月10日 22:00:00</time>' in transcript
    listing = manager_page(
        history,
        f"/reports/conversations/?from={RANGE['from']}&to={RANGE['to']}&metric=conversations",
        language="zh-hans",
        time_zone="Asia/Shanghai",
    )
    assert ">2026年11月10日 22:00</time>" in listing
    assert 'data-time-zone="Asia/Shanghai"' in listing


def test_an_english_speaking_manager_in_new_york_reads_the_same_time_in_new_york(history: History) -> None:
    c1 = history.c["c1"]
    transcript = manager_page(
        history, f"/reports/conversations/{c1.public_id}/", language="en", time_zone="America/New_York"
    )
    assert '<time datetime="2026-11-10T09:00:00-05:00" class="muted">Nov 10, 2026, 9:00:00 AM</time>' in transcript


def test_counts_on_the_pages_are_grouped_as_the_language_does(history: History) -> None:
    Draft.objects.filter(pk=history.d["d2"].pk).update(chars_changed=12345)
    c2 = history.c["c2"]
    for language in ("en", "zh-hans"):
        transcript = manager_page(
            history, f"/reports/conversations/{c2.public_id}/", language=language, time_zone="UTC"
        )
        assert re.search(r'data-testid="edit-size">40% \((修改了 )?12,345 ', transcript), language


def test_report_numbers_follow_the_language() -> None:
    for language in ("en", "zh-hans"):  # both group thousands with a comma, as Intl.NumberFormat does
        with translation.override(language):
            assert fmt_int(1234567) == "1,234,567"
            assert fmt_share(0.12345) == "12.3%"
            assert fmt_seconds(12_345_678) == translation.gettext("%(n)s d") % {"n": "142.9"}
