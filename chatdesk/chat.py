"""`python -m chatdesk.chat [--url ws://127.0.0.1:8000]`: the seed essay's terminal chat loop, held with
the real desk over the customer protocol of docs/protocol.md (and nothing else of ChatDesk: it imports
no Django, as an outside client would not).

    You: where is my order?
    [An agent is reviewing a reply…]
    Desk: Your parcel left our warehouse on Monday…

Type a line to send it; `/human` asks for a person; `bye` (or end of input) ends the chat. The
conversation's token is kept in --token-file, so the next run resumes the same conversation and shows
what was said; --new starts another one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import websockets

DEFAULT_TOKEN_FILE = Path.home() / ".chatdesk-chat-token.json"


class TerminalChat:
    """One customer's chat on `url` (ws:// or wss://, the desk's address), printing to `out`."""

    def __init__(self, url: str, token_file: Path, *, new: bool, out: TextIO) -> None:
        self.base = url.rstrip("/")
        self.token_file = token_file
        self.out = out
        tokens = self._tokens()
        self.token: str | None = None if new else tokens.get(self.base)
        self.shown: set[int] = set()  # seqs printed (a message is echoed to us after its ack)
        self.sent: set[str] = set()  # client_ids of lines typed here (the terminal shows them already)

    def _tokens(self) -> dict[str, str]:
        try:
            stored = json.loads(self.token_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def _keep_token(self, token: str) -> None:
        self.token = token
        tokens = self._tokens()
        tokens[self.base] = token
        self.token_file.write_text(json.dumps(tokens), encoding="utf-8")

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def run(self, lines: asyncio.Queue[str | None]) -> int:
        parts = urlsplit(self.base)
        origin = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        try:
            async with websockets.connect(f"{self.base}/ws/chat/", origin=origin) as ws:  # type: ignore[arg-type]
                hello: dict[str, Any] = {"type": "hello", "language": "en"}
                if self.token:
                    hello.update(token=self.token, after_seq=0)
                await ws.send(json.dumps(hello))
                reader = asyncio.create_task(self._read(ws))
                try:
                    return await self._type(ws, lines, reader)
                finally:
                    reader.cancel()
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
            self.say(f"[cannot talk to the desk at {self.base}: {exc}]")
            return 1

    async def _type(self, ws: Any, lines: asyncio.Queue[str | None], reader: asyncio.Task[None]) -> int:
        """Send what is typed until `bye`, end of input, or the desk closing the connection."""
        while True:
            next_line = asyncio.ensure_future(lines.get())
            done, _ = await asyncio.wait({next_line, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                next_line.cancel()
                self.say("[the desk closed the connection]")
                return 1
            line = next_line.result()
            if line is None or line.strip().lower() == "bye":
                await ws.send(json.dumps({"type": "end"}))
                await asyncio.sleep(0.3)  # let the desk's answer arrive before leaving
                self.say("[chat ended]")
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/human":
                await ws.send(json.dumps({"type": "request_human"}))
                continue
            client_id = uuid.uuid4().hex
            self.sent.add(client_id)
            await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "welcome":
                self._keep_token(frame["token"])
                for message in frame.get("messages", []):
                    self._show(message)
                self._status(frame.get("status_text"))
            elif kind == "message":
                self._show(frame)
            elif kind == "status":
                self._status(frame.get("text"))
            elif kind == "error":
                self.say(f"[{frame.get('code')}: {frame.get('message')}]")

    def _show(self, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        if not isinstance(seq, int) or seq in self.shown:
            return
        self.shown.add(seq)
        if message.get("client_id") in self.sent:
            return  # typed here: already on the screen
        if message.get("sender") == "customer":
            self.say(f"You: {message.get('text', '')}")
        elif message.get("sender") == "agent" and message.get("author"):
            self.say(f"Desk ({message['author']}): {message.get('text', '')}")
        else:
            self.say(f"Desk: {message.get('text', '')}")

    def _status(self, text: object) -> None:
        if isinstance(text, str) and text:
            self.say(f"[{text}]")


async def _read_lines(queue: asyncio.Queue[str | None]) -> None:
    """stdin, a line at a time, without blocking the socket (None at end of input)."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        await queue.put(line if line else None)
        if not line or line.strip().lower() == "bye":
            return  # no read left waiting on the terminal once the chat ends


async def _main(args: argparse.Namespace) -> int:
    chat = TerminalChat(args.url, Path(args.token_file), new=args.new, out=sys.stdout)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    typing = asyncio.create_task(_read_lines(lines))
    try:
        return await chat.run(lines)
    finally:
        typing.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000", help="the desk's address (ws:// or wss://)")
    parser.add_argument("--token-file", default=str(DEFAULT_TOKEN_FILE), help="where conversation tokens are kept")
    parser.add_argument("--new", action="store_true", help="start a new conversation instead of resuming")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
