"""LoRA fine-tuning of the generative model on agents' approved replies (the seed's domain fine-tuning).

Plain Python: chat examples in (each a list of {"role", "content"} ending with the assistant reply the
customer got), a peft adapter folder out, which `DRAFT_ADAPTER` then loads. The loss is computed on the
final assistant reply only: the model learns how agents answer, not how customers ask.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatdesk.drafting.base import EngineError
from chatdesk.drafting.generation import _model_source, choose_device, libraries

Progress = Callable[[int, int, float], None]  # (step, total steps, loss)
Chat = list[dict[str, str]]


@dataclass(frozen=True)
class FinetuneOptions:
    steps: int = 200
    learning_rate: float = 2e-4
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    max_tokens: int = 512
    seed: int = 0


@dataclass(frozen=True)
class FinetuneResult:
    adapter: Path
    examples: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def read_chat_jsonl(path: Path) -> list[Chat]:
    """The `messages` of each line of chat.jsonl (export_training_data); lines not ending with an assistant
    message are refused with the line number."""
    chats = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            if not messages or messages[-1]["role"] != "assistant":
                raise ValueError("the last message must be the assistant's reply")
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a chat example ({error})") from None
        chats.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return chats


def _encode(tokenizer: Any, chat: Chat, max_tokens: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 except on the final reply), cut from the left to max_tokens."""
    prompt = tokenizer.apply_chat_template(chat[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(chat, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) == len(prompt_ids):
        return None  # the template does not extend the prompt with the reply: nothing to learn from
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return full_ids[-max_tokens:], labels[-max_tokens:]


def finetune_lora(
    *,
    model: str,
    chats: Sequence[Chat],
    out: Path,
    options: FinetuneOptions = FinetuneOptions(),
    device: str | None = None,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Train a LoRA adapter for `model` (a folder or a local cache name) on `chats`; save it in `out`."""
    try:
        import peft
    except ImportError:
        raise EngineError("finetuning needs the peft package (pip install peft)") from None
    torch, transformers = libraries()
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    target = choose_device(device)
    source = _model_source(model)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
        base = transformers.AutoModelForCausalLM.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    except OSError as error:
        raise EngineError(f"cannot load the model {model!r} from local files: {error}") from None
    encoded = [e for e in (_encode(tokenizer, chat, options.max_tokens) for chat in chats) if e is not None]
    if not encoded:
        raise EngineError("no usable chat examples (each needs an assistant reply after the conversation)")
    config = peft.LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    lora = peft.get_peft_model(base, config).to(target)
    lora.train()
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=options.learning_rate)
    losses: list[float] = []
    order: list[int] = []
    for step in range(1, options.steps + 1):
        if not order:
            order = list(range(len(encoded)))
            rng.shuffle(order)
        ids, labels = encoded[order.pop()]
        output = lora(input_ids=torch.tensor([ids], device=target), labels=torch.tensor([labels], device=target))
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(output.loss.detach()))
        if progress is not None:
            progress(step, options.steps, losses[-1])
    out.mkdir(parents=True, exist_ok=True)
    lora.save_pretrained(str(out))
    return FinetuneResult(
        adapter=out,
        examples=len(encoded),
        steps=options.steps,
        first_loss=_mean(losses[: max(1, len(losses) // 10)]),
        last_loss=_mean(losses[-max(1, len(losses) // 10) :]),
        seconds=time.perf_counter() - started,
    )


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)
