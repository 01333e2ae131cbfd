"""A small soak (bench/soak.py) on its own database and Redis keys: the delivery invariants hold under load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from tests.live import ROOT

pytestmark = pytest.mark.live


def test_a_small_soak_keeps_every_message_and_reply_and_leaves_no_draft_stuck() -> None:
    database = urllib.parse.urlparse(os.environ["DATABASE_URL"])
    server = database._replace(path="").geturl()
    run = subprocess.run(
        [
            sys.executable, "bench/soak.py", "--customers", "10", "--agents", "2", "--seconds", "10",
            "--postgres", server, "--redis", os.environ["REDIS_URL"],
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.stdout.strip(), run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["invariants"] == {
        "every_customer_message_stored_once": True,
        "every_reply_delivered_once": True,
        "no_draft_stuck": True,
        "no_client_failed": True,
    }, run.stdout
    assert run.returncode == 0
    counts = result["counts"]
    assert counts["customer_messages_acked"] == counts["customer_messages_sent"] > 0
    assert counts["approvals"] > 0
    assert counts["resends"] > 0
