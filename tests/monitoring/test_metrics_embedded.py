"""`manage.py rundesk` gives its children one metrics folder, emptied at start: /metrics of the embedded desk
shows what its worker drafted, and nothing a previous run counted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from chatdesk.monitoring.exposition import multiprocess_dir_reset
from tests.live import ROOT, Client, Desk, is_type
from tests.monitoring.scrape import Samples, samples, value

TOKEN = "embedded-metrics-token"


def test_reset_empties_a_folder_of_its_metric_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    multiprocess_dir_reset(folder)
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "gauge_livesum_123.db").write_bytes(b"old")
    (folder / "README").write_text("not ours")
    multiprocess_dir_reset(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["README"]


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    # What an earlier run of this desk counted, left in its metrics folder.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    earlier = "from chatdesk.monitoring import metrics; metrics.ESCALATIONS.labels(reason='customer_request').inc(5)"
    subprocess.run([sys.executable, "-c", earlier], cwd=ROOT, env=env, check=True)
    assert list((tmp_path / "metrics").glob("counter_*.db"))
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    running = Desk(tmp_path).wait_until_running()
    yield running
    running.stop()


def scrape(desk: Desk) -> Samples:
    request = urllib.request.Request(f"{desk.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return samples(response.read().decode())


@pytest.mark.live
def test_the_embedded_desk_scrapes_its_worker_and_forgets_earlier_runs(desk: Desk) -> None:
    assert value(scrape(desk), "chatdesk_escalations_total", reason="customer_request") == 0
    ws = desk.base_url.replace("http://", "ws://")

    async def scenario() -> Samples:
        customer = await Client.connect(f"{ws}/ws/chat/", origin=desk.base_url)
        await customer.send({"type": "hello"})
        await customer.wait_for(is_type("welcome"))
        await customer.send({"type": "message", "client_id": "m-1", "text": "Can I pay with PayPal?"})
        await customer.wait_for(is_type("ack"))
        await customer.send({"type": "request_human"})
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            scraped = scrape(desk)
            if value(scraped, "chatdesk_time_to_draft_seconds_count", engine=settings.DRAFT_ENGINE) >= 1:
                break
            assert asyncio.get_running_loop().time() < deadline, sorted(scraped.items())
            await asyncio.sleep(0.2)  # poll interval while the worker drafts
        await customer.close()
        return scraped

    scraped = asyncio.run(scenario())
    assert value(scraped, "chatdesk_websocket_connections", kind="customer") == 1  # Daphne's, in the same scrape
    assert value(scraped, "chatdesk_escalations_total", reason="customer_request") == 1
    assert (Path(desk.log.parent) / "metrics").is_dir()
