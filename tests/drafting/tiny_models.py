"""Tiny randomly initialised chat models, built at test time: no download, a few seconds at most.

`build_chat_model(folder)` trains a byte-level BPE tokenizer on a small corpus, wraps it with a
ChatML chat template, builds a Llama- or Qwen2-shaped causal LM over that vocabulary and saves
both with `save_pretrained`, so the real loading code reads them like any local model folder.
The weights are random: the text is gibberish, but it is deterministic for a given seed, which
is all the tests of decoding, batching and streaming need.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_SENTENCES = [
    "Where is my order? It has not arrived yet.",
    "You can return any item within 30 days for a full refund.",
    "Refunds reach your card within 5 to 10 business days.",
    "We ship to Canada, the United States and most of Europe.",
    "Your parcel is on its way; the tracking link is in your email.",
    "I was charged twice for the same jacket, please help.",
    "To reset your password, use the link on the sign-in page.",
    "Answer only from the passages below and cite their ids like [article:3].",
    "If they do not cover the question, say you will check with a colleague.",
    "Café crème, naïve façade, Größe, 東京, emoji 😀 and ✓ are multi-byte.",
    "Thank you for your patience! Is there anything else I can help with?",
    "Promo codes are entered at checkout, below the order summary.",
]
_SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"] + ["qu", "th", "sh", "ch", "ng"]


def training_corpus(words: int, seed: int = 0) -> list[str]:
    """Shop sentences plus pseudo-words, enough distinct pairs for BPE to learn `words`-scale merges."""
    rng = random.Random(seed)
    lines = list(_SENTENCES) * 4
    for _ in range(words // 8):
        lines.append(" ".join("".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(8)))
    return lines


def build_tokenizer(vocab_size: int = 512, seed: int = 0):  # type: ignore[no-untyped-def]
    """A byte-level BPE `PreTrainedTokenizerFast` with a ChatML chat template (any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(vocab_size * 4, seed), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_chat_model(
    folder: Path,
    *,
    arch: Literal["llama", "qwen2"] = "llama",
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    context: int = 512,
    init_range: float = 0.2,
    seed: int = 0,
) -> Path:
    """Save a tokenizer and a random causal LM of the given shape in `folder`; returns `folder`.

    A wide `init_range` makes the next-token distribution peaked, as in a trained model, so
    greedy decoding has clear winners instead of near-ties.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(vocab_size, seed)
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": context,
        "initializer_range": init_range,
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": False,
    }
    torch.manual_seed(seed)
    model: torch.nn.Module
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**shape))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**shape, use_sliding_window=False))
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)  # type: ignore[operator]
    tokenizer.save_pretrained(folder)
    return folder
