"""Time from a customer's message to its draft on an agent's dashboard, on both run modes, side by side.

Starts the desk twice with `manage.py rundesk` — the embedded default (SQLite,
embedded Redis) and production services (PostgreSQL, Redis) — then, on each,
sends N questions from N new customer sockets one after another and times
each until the agents' queue socket reports its draft ready.

    .venv/bin/python bench/time_to_draft.py [--messages 50] [--postgres URL] [--redis URL]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import websockets

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "where is my order?",
    "how do I return a jacket?",
    "my card was declined",
    "can I change my delivery address",
    "how long does a refund take",
    "I forgot my password",
    "do you ship to Canada?",
    "I was charged twice",
    "my parcel arrived damaged",
    "how do I use a promo code",
]
AGENT = ("agent", "agent-demo-pass")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_desk(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rundesk", "--port", str(port)],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while "ChatDesk is running" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"desk did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return process, f"http://127.0.0.1:{port}"


def login(base: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"{base}/accounts/login/"
    opener.open(url).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode({"username": AGENT[0], "password": AGENT[1], "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(url, data=data.encode(), headers={"Referer": url})).read()
    return next(c.value for c in jar if c.name == "sessionid")


async def measure(base: str, messages: int) -> list[float]:
    ws = base.replace("http://", "ws://")
    session = login(base)
    timings: list[float] = []
    async with websockets.connect(
        f"{ws}/ws/agents/queue/", origin=base, additional_headers={"Cookie": f"sessionid={session}"}
    ) as queue:
        await queue.recv()  # snapshot
        # One warm-up message: the worker loads the encoder and embeds the knowledge base once.
        for n in range(messages + 1):
            async with websockets.connect(f"{ws}/ws/chat/", origin=base) as customer:
                await customer.send(json.dumps({"type": "hello"}))
                json.loads(await customer.recv())
                started = time.perf_counter()
                text = QUESTIONS[n % len(QUESTIONS)]
                await customer.send(json.dumps({"type": "message", "client_id": f"b-{n}", "text": text}))
                while True:
                    frame = json.loads(await asyncio.wait_for(queue.recv(), 60))
                    item = frame.get("item") or {}
                    if frame["type"] == "queue.update" and item.get("draft_status") == "ready":
                        break
                if n:
                    timings.append(time.perf_counter() - started)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_s": round(statistics.median(ordered), 4),
        "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
        "p99_s": round(ordered[int(0.99 * (len(ordered) - 1))], 4),
        "max_s": round(ordered[-1], 4),
    }


def recreate_database(url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/chatdesk_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="chatdesk-bench-"))
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    modes = {
        "embedded": {**base_env, "DATA_DIR": str(work / "embedded"), "EMBEDDED_REDIS_PORT": str(free_port())},
        "postgres_redis": {
            **base_env,
            "DATA_DIR": str(work / "production"),
            "DATABASE_URL": args.postgres,
            "REDIS_URL": args.redis,
            "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        },
    }
    recreate_database(args.postgres)
    results: dict[str, dict[str, float]] = {}
    for mode, env in modes.items():
        Path(env["DATA_DIR"]).mkdir(parents=True)
        process, base = start_desk(env, work / f"{mode}.log")
        try:
            timings = asyncio.run(measure(base, args.messages))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        results[mode] = summary(timings)
        print(f"{mode:15s} n={len(timings)}  " + "  ".join(f"{k}={v:.3f}" for k, v in results[mode].items()))
    ratio = results["postgres_redis"]["p50_s"] / results["embedded"]["p50_s"]
    print(f"p50 ratio postgres_redis / embedded: {ratio:.2f}")
    print(json.dumps({"messages": args.messages, **results, "p50_ratio_postgres_over_embedded": round(ratio, 3)}))


if __name__ == "__main__":
    main()
