"""Who sees which language: agents and managers their own choice (Preferences), customers their
browser's (Accept-Language, the widget's hello); error frames' messages follow, their codes never do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.accounts.models import Profile
from chatdesk.asgi import application
from tests.conftest import PASSWORD

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")


def signed_in(user: User, **headers: str) -> Client:
    client = Client(**headers)
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_an_agent_who_chose_chinese_sees_the_dashboard_in_chinese(agent: User) -> None:
    Profile.objects.create(user=agent, language="zh-hans")
    page = signed_in(agent, HTTP_ACCEPT_LANGUAGE="en-GB").get("/agents/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "<h1>队列</h1>" in page and "正在连接…" in page and "退出登录" in page
    assert "Queue" not in page and "Log out" not in page
    # The page's scripts get their wording from the catalogue in the same language.
    catalogue = signed_in(agent).get("/jsi18n/").content.decode()
    assert "\\u8d77\\u8349\\u4e2d" in catalogue or "起草中" in catalogue  # "Drafting"


@pytest.mark.django_db
def test_an_agent_without_a_choice_gets_their_browsers_language(agent: User) -> None:
    assert "<h1>Queue</h1>" in signed_in(agent, HTTP_ACCEPT_LANGUAGE="en-US").get("/agents/").content.decode()
    assert "<h1>队列</h1>" in signed_in(agent, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").get("/agents/").content.decode()


@pytest.mark.django_db
def test_a_manager_switches_to_chinese_and_back_in_preferences(manager: User) -> None:
    client = signed_in(manager, HTTP_ACCEPT_LANGUAGE="en")
    answer = client.post("/accounts/preferences/", {"language": "zh-hans", "time_zone": "Asia/Shanghai"}, follow=True)
    page = answer.content.decode()
    assert "您的偏好设置已保存。" in page and "<h1>偏好设置</h1>" in page
    assert "交接报表" in client.get("/reports/").content.decode()  # "Handoff report"
    assert Profile.objects.get(user=manager).time_zone == "Asia/Shanghai"
    refused = client.post("/accounts/preferences/", {"language": "fr", "time_zone": ""}, follow=True).content.decode()
    assert "请从列表中选择一种语言。" in refused  # "Choose one of the languages in the list.", in Chinese still
    back = client.post("/accounts/preferences/", {"language": "", "time_zone": ""}, follow=True).content.decode()
    assert "Your preferences are saved." in back and Profile.objects.get(user=manager).language == ""


@pytest.mark.django_db
def test_a_customer_whose_browser_asks_for_chinese_gets_the_shop_and_the_widgets_words_in_chinese() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.8")
    page = client.get("/").content.decode()
    assert '<html lang="zh-hans">' in page and "日常好物，用心制作。" in page
    catalogue = Client().get("/jsi18n/widget/zh-CN.json")
    assert catalogue["Access-Control-Allow-Origin"] == "*"  # read by the widget on other sites' pages
    assert catalogue.json()["catalog"]["Talk to a person"] == "转人工客服"
    assert Client().get("/jsi18n/widget/en-GB.json").json()["catalog"].get("Talk to a person") is None
    assert "Everyday things, made well." in Client(HTTP_ACCEPT_LANGUAGE="en").get("/").content.decode()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_error_frames_are_worded_in_the_customers_language_with_the_same_codes() -> None:
    async def scenario() -> None:
        socket = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN, HOST])
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "message", "client_id": "m-1", "text": "hi"})
        before_hello = await socket.receive_json_from(timeout=5)
        assert (before_hello["code"], before_hello["message"]) == ("hello_required", 'Send a "hello" frame first.')
        await socket.send_json_to({"type": "hello", "language": "zh-CN"})
        assert (await socket.receive_json_from(timeout=5))["type"] == "welcome"
        await socket.send_json_to({"type": "message", "client_id": "m-1", "text": "   "})
        empty = await socket.receive_json_from(timeout=5)
        assert (empty["code"], empty["message"]) == ("empty_message", "请先输入消息再发送。")
        await socket.disconnect()

        # Before any hello, the handshake's Accept-Language decides.
        headers = [ORIGIN, HOST, (b"accept-language", b"zh-CN,zh;q=0.9")]
        socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "nonsense"})
        unknown = await socket.receive_json_from(timeout=5)
        assert unknown["code"] == "unknown_type" and unknown["message"].startswith("未知的帧类型")
        await socket.disconnect()

    run(scenario)
