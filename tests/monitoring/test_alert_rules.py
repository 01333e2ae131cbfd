"""The alert rules docs/operations.md gives are valid for Prometheus (promtool) and fire on the metrics the
desk exports under the names they use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.live import ROOT

pytestmark = pytest.mark.django_db

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def documented_rules() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- alert-rules:start -->\n```yaml\n(.*?)```\n<!-- alert-rules:end -->", text, re.S)
    assert block is not None, "the alert rules block in docs/operations.md"
    return block.group(1)


def test_promtool_accepts_the_documented_rules(tmp_path: Path) -> None:
    rules = tmp_path / "chatdesk-alerts.yml"
    rules.write_text(documented_rules())
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_every_metric_the_rules_name_is_exported(settings: Any) -> None:
    settings.METRICS_TOKEN = "token"
    scraped = Client().get("/metrics", headers={"Authorization": "Bearer token"}).content.decode()
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(scraped)
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    named = set(re.findall(r"\bchatdesk_\w+", documented_rules()))
    assert named and named <= exported, named - exported


UNIT_TEST = """
rule_files: [chatdesk-alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: chatdesk_queue_oldest_pending_draft_seconds{instance="web-1", job="chatdesk"}
        values: 0 0 200 260 320 380 440
      - series: chatdesk_queue_conversations{status="escalated", instance="web-1", job="chatdesk"}
        values: 3x20
      - series: chatdesk_websocket_connections{kind="agent", instance="web-1", job="chatdesk"}
        values: 0x20
      - series: chatdesk_drafts_total{engine="retrieval", outcome="ready", instance="web-1", job="chatdesk"}
        values: 0+10x30
      - series: chatdesk_drafts_total{engine="retrieval", outcome="failed", instance="web-1", job="chatdesk"}
        values: 0+5x30
    alert_rule_test:
      - eval_time: 6m
        alertname: ChatDeskDraftsWaitForWorkers
        exp_alerts:
          - exp_labels: {severity: page}
            exp_annotations:
              summary: "A draft has waited 7m 20s for a worker: are the drafts workers running?"
      - eval_time: 12m
        alertname: ChatDeskEscalatedWithNoAgentOnline
        exp_alerts:
          - exp_labels: {severity: page}
            exp_annotations:
              summary: "Customers wait for a person and no agent has the dashboard open."
      - eval_time: 25m
        alertname: ChatDeskDraftsFailing
        exp_alerts:
          - exp_labels: {severity: page}
            exp_annotations:
              summary: "33.33% of drafts fail; see chatdesk_draft_failures_total by error_code."
      - eval_time: 25m
        alertname: ChatDeskEscalationQueueGrowing
        exp_alerts: []
"""


def test_the_rules_fire_when_drafts_wait_fail_or_nobody_answers(tmp_path: Path) -> None:
    (tmp_path / "chatdesk-alerts.yml").write_text(documented_rules())
    (tmp_path / "test.yml").write_text(UNIT_TEST)
    tested = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
