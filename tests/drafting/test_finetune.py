"""finetune_generator: a LoRA adapter trained on exported chats, loadable by the transformers engine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from chatdesk.drafting.base import DraftContext
from chatdesk.drafting.engines.generative import TransformersEngine
from chatdesk.drafting.finetune import read_chat_jsonl
from tests.drafting.conftest import fake_encode

REPLY = "Refunds reach your card within 5 business days."


def write_chats(path: Path) -> Path:
    chats = [
        {
            "messages": [
                {"role": "user", "content": "how long does a refund take"},
                {"role": "assistant", "content": REPLY},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "when do i get my money back"},
                {"role": "assistant", "content": REPLY},
            ]
        },
    ]
    path.write_text("".join(json.dumps(c) + "\n" for c in chats))
    return path


def test_an_adapter_is_trained_on_exported_chats_and_the_engine_drafts_with_it(
    model_dir: Path, tmp_path: Path, draft_context: DraftContext
) -> None:
    adapter = tmp_path / "adapter"
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "finetune_generator",
        "--data", str(write_chats(tmp_path / "chat.jsonl")), "--out", str(adapter), "--model", str(model_dir),
        "--steps", "30", "--learning-rate", "0.01", "--device", "cpu",
        stdout=out, stderr=err,
    )  # fmt: skip
    assert (adapter / "adapter_config.json").exists()
    assert "step 30/30" in err.getvalue()
    first, last = (float(x) for x in out.getvalue().split("loss ")[1].split(",")[0].split(" → "))
    assert last < first  # it learned the agents' reply

    base = TransformersEngine(model=str(model_dir), encode=fake_encode, max_new_tokens=12, context_tokens=400)
    tuned = TransformersEngine(
        model=str(model_dir), adapter=str(adapter), encode=fake_encode, max_new_tokens=12, context_tokens=400
    )
    assert tuned.draft(draft_context).text != base.draft(draft_context).text


def test_bad_training_data_is_refused_with_the_line(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(ValueError, match=r"chat\.jsonl:1"):
        read_chat_jsonl(data)
    with pytest.raises(CommandError, match=r"chat\.jsonl:1"):
        call_command("finetune_generator", "--data", str(data), "--out", str(tmp_path / "a"), "--model", str(model_dir))
