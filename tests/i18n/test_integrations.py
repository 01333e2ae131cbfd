"""The integration pages (webhooks, API tokens) follow the manager's language, and the API words its errors
in the client's Accept-Language with the same codes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.accounts.models import Profile
from chatdesk.webhooks.models import Endpoint
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def chinese_manager(manager: User) -> Client:
    Profile.objects.create(user=manager, language="zh-hans")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(manager)
    return client


def test_a_manager_who_chose_chinese_manages_webhooks_in_chinese(manager: User) -> None:
    client = chinese_manager(manager)
    page = client.get("/webhooks/new/").content.decode()
    assert "<h1>添加 Webhook 端点</h1>" in page and "客户发起了对话" in page  # an event's description
    refused = client.post("/webhooks/new/", {"url": "http://crm.example.com/in", "events": []}).content.decode()
    assert "请至少选择一个事件。" in refused and "Webhook 网址必须以 https:// 开头" in refused
    added = client.post(
        "/webhooks/new/", {"url": "https://crm.example.com/in", "events": ["conversation.created"]}, follow=True
    ).content.decode()
    assert "端点已添加。" in added and "<h2>签名密钥</h2>" in added and "尚未发送任何内容。" in added
    endpoint = Endpoint.objects.get()
    Endpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="连续 3 次投递失败后已停用。")
    notice = client.get("/webhooks/").content.decode()
    assert f"Webhook 端点 {endpoint.url}：连续 3 次投递失败后已停用。" in notice and "已停用" in notice


def test_a_manager_who_chose_chinese_creates_an_api_token_in_chinese(manager: User) -> None:
    client = chinese_manager(manager)
    page = client.post("/api-tokens/", {"name": "草稿机器人", "scope": "write"}).content.decode()
    assert "<h1>API 令牌</h1>" in page and "新令牌 <strong>草稿机器人</strong>（读写）" in page
    refused = client.post("/api-tokens/", {"name": " ", "scope": "write"})
    assert refused.status_code == 422 and "请为令牌起一个 1 到 80 个字符的名称。" in refused.content.decode()


def test_api_errors_are_worded_in_the_clients_language_with_the_same_codes() -> None:
    chinese = ApiClient("cdk_forged")
    chinese.client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    refused = chinese.get("/conversations").json()
    assert refused == {"code": "invalid_token", "message": "此 API 令牌不存在或已被撤销。"}
    english = ApiClient("cdk_forged").get("/conversations").json()
    assert english == {"code": "invalid_token", "message": "This API token is unknown or was revoked."}
