"""A lean forward for Llama-family models (Llama, Qwen2, Mistral): the batcher's steps and prefills.

A decode step of a small model is mostly overhead. transformers' generic forward spends about a
millisecond a step on its machinery (output capturing, mask building, keyword plumbing), and on
CPU each bfloat16 linear layer reorders its weight into oneDNN's blocked layout on every call —
for the 8,192-word output layer of the bench model that alone is a third of its time. This step
runs the model's own embedding, norms, rotary embedding and activation in the order its decoder
layers do, with the linear layers' weights packed once for the batch size. The batcher uses it
only after checking at start that it gives the very bits transformers' forward gives
(`batching._lean_decoder`). Measured here on the bench model (bench/generation.py), 32 rows:
8.7 ms a step through transformers, 6.9 ms through this; the bench's 32 prompts prefilled in
about 0.32 s through transformers, 0.28 s through this.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatdesk.drafting.generation import libraries

if TYPE_CHECKING:
    import torch

SUPPORTED_MODEL_TYPES = frozenset({"llama", "qwen2", "mistral"})
_PACK_LIMIT_BYTES = 2 * 1024**3  # packing copies the weights; above this, memory matters more

# attend(attention module, query [rows, heads, n, dim], keys, values) -> [rows, n, heads, dim]
Attend = Callable[[Any, "torch.Tensor", "torch.Tensor", "torch.Tensor"], "torch.Tensor"]


class _Linear:
    """A linear layer's forward; for inputs of exactly `rows` rows (the batch of a step) through a
    weight packed for them where possible — same bits, checked with the whole step; other shapes
    (prompts) take the plain path, as in float32 the packed kernel's bits differ there."""

    def __init__(self, module: Any, rows: int, pack: bool) -> None:
        torch, _ = libraries()
        self.weight, self.bias, self.rows = module.weight, module.bias, rows
        self.packed = torch.ops.mkldnn._reorder_linear_weight(module.weight, rows) if pack else None

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        torch, _ = libraries()
        flat = hidden.reshape(-1, hidden.shape[-1])
        if self.packed is None or flat.shape[0] != self.rows:
            return torch.nn.functional.linear(hidden, self.weight, self.bias)
        output = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        return output.view(*hidden.shape[:-1], output.shape[-1])


class _Layer:
    def __init__(self, layer: Any, rows: int, pack: bool) -> None:
        attention, mlp = layer.self_attn, layer.mlp
        self.attention = attention
        self.head_dim = int(attention.head_dim)
        self.input_norm, self.post_norm = layer.input_layernorm, layer.post_attention_layernorm
        self.q, self.k, self.v, self.o = (
            _Linear(getattr(attention, name), rows, pack) for name in ("q_proj", "k_proj", "v_proj", "o_proj")
        )
        self.gate, self.up, self.down = (
            _Linear(getattr(mlp, name), rows, pack) for name in ("gate_proj", "up_proj", "down_proj")
        )
        self.act = mlp.act_fn


class LeanDecoder:
    """Prompts and one-token steps of `rows` rows through the model's own modules. Build with `for_model`."""

    def __init__(self, model: Any, rows: int, pack: bool) -> None:
        inner = model.model
        self.rows = rows
        self.packed = pack
        self.embed, self.norm, self.rotary = inner.embed_tokens, inner.norm, inner.rotary_emb
        self.apply_rotary = sys.modules[type(inner.layers[0].self_attn).__module__].apply_rotary_pos_emb
        self.layers = [_Layer(layer, rows, pack) for layer in inner.layers]
        self.lm_head = _Linear(model.lm_head, rows, pack)

    @classmethod
    def for_model(cls, model: Any, rows: int) -> LeanDecoder | None:
        """A decoder for `model`, or None when it is not a plain Llama-family model."""
        if not _plain_llama_family(model):
            return None
        torch, _ = libraries()
        parameter = next(model.parameters())
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        pack = (
            parameter.device.type == "cpu"
            and parameter.dtype in (torch.bfloat16, torch.float32)
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and size <= _PACK_LIMIT_BYTES
        )
        return cls(model, rows, pack)

    def step(self, input_ids: torch.Tensor, position_ids: torch.Tensor, cache: Any, attend: Attend) -> torch.Tensor:
        """Logits [rows, vocabulary] for input_ids [rows, 1] at position_ids [rows, 1]; each layer's
        keys and values go through cache.layers[i].update, its attention through `attend`."""
        return self.lm_head(self.norm(self._layers(input_ids, position_ids, cache, attend)))[:, -1]

    def prefill(self, input_ids: torch.Tensor, cache: Any, attend: Attend) -> torch.Tensor:
        """The next-token logits [vocabulary] after one prompt, input_ids [1, n] at positions 0..n-1."""
        positions = libraries()[0].arange(input_ids.shape[1], device=input_ids.device)[None, :]
        hidden = self._layers(input_ids, positions, cache, attend)
        return self.lm_head(self.norm(hidden[:, -1:]))[0, -1]

    def _layers(self, input_ids: torch.Tensor, position_ids: torch.Tensor, cache: Any, attend: Attend) -> torch.Tensor:
        rows, length = input_ids.shape
        hidden = self.embed(input_ids)
        cos, sin = self.rotary(hidden, position_ids)
        for index, layer in enumerate(self.layers):
            normed = layer.input_norm(hidden)
            shape = (rows, length, -1, layer.head_dim)
            query = layer.q(normed).view(shape).transpose(1, 2)
            key = layer.k(normed).view(shape).transpose(1, 2)
            value = layer.v(normed).view(shape).transpose(1, 2)
            query, key = self.apply_rotary(query, key, cos, sin)
            key, value = cache.layers[index].update(key, value, index)
            attended = attend(layer.attention, query, key, value).reshape(rows, length, -1).contiguous()
            hidden = hidden + layer.o(attended)
            normed = layer.post_norm(hidden)
            hidden = hidden + layer.down(layer.act(layer.gate(normed)) * layer.up(normed))
        return hidden


def _plain_llama_family(model: Any) -> bool:
    torch, _ = libraries()
    config = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES or not layers:
        return False
    if not all(hasattr(inner, name) for name in ("embed_tokens", "norm", "rotary_emb")):
        return False
    linears = [getattr(model, "lm_head", None)]
    for layer in layers:
        attention, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        linears += [getattr(attention, name, None) for name in ("q_proj", "k_proj", "v_proj", "o_proj")]
        linears += [getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
        if not hasattr(mlp, "act_fn") or getattr(attention, "sliding_window", None):
            return False
    # Exactly nn.Linear: an adapter's wrapped layers (LoRA) take transformers' own forward.
    module = sys.modules.get(type(layers[0].self_attn).__module__)
    return all(type(linear) is torch.nn.Linear for linear in linears) and hasattr(module, "apply_rotary_pos_emb")
