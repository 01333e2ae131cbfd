"""Model loading, decoding options, confidence and diverse beam search."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest

from chatdesk.drafting.base import DraftCancelled, EngineError
from chatdesk.drafting.generation import (
    HARD_MAX_NEW_TOKENS,
    DecodingOptions,
    LoadedModel,
    ModelSpec,
    beam_search,
    choose_device,
    choose_dtype,
    cpu_supports_bf16,
    draft_confidence,
    libraries,
    load_model,
    mean_logprob,
    resolve_decoding,
)
from chatdesk.drafting.prompt import ChatMessage

DEFAULTS = DecodingOptions(max_new_tokens=200)
CHAT: list[ChatMessage] = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "where is my order?"}]


def test_request_overrides_are_applied_and_clamped() -> None:
    options = resolve_decoding(
        DEFAULTS, {"strategy": "sample", "temperature": 9, "top_p": 0, "max_new_tokens": 10_000, "seed": 3}
    )
    assert (options.strategy, options.temperature, options.top_p, options.seed) == ("sample", 2.0, 0.01, 3)
    assert options.max_new_tokens == 200  # never above the operator's setting
    assert resolve_decoding(DEFAULTS, {"num_beams": 100, "num_beam_groups": 1}).num_beams == 8
    assert resolve_decoding(DEFAULTS, {"num_alternatives": 9}).num_alternatives == 3
    assert resolve_decoding(DEFAULTS, {"num_beams": 3}).num_beam_groups == 1  # the default 2 does not divide 3
    assert resolve_decoding(DEFAULTS, {"num_beams": 6}).num_beam_groups == 2
    assert resolve_decoding(DEFAULTS, None) == DEFAULTS
    assert resolve_decoding(DecodingOptions(max_new_tokens=99_999)).max_new_tokens == HARD_MAX_NEW_TOKENS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("greedy", "must be a mapping"),
        ({"temprature": 0.5}, "unknown decoding option"),
        ({"strategy": "nucleus"}, "strategy must be one of"),
        ({"temperature": "hot"}, "must be a number"),
        ({"num_beams": True}, "must be a number"),
        ({"num_beams": 2.5}, "whole number"),
        ({"top_p": math.nan}, "finite"),
        ({"num_beams": 4, "num_beam_groups": 3}, "multiple of num_beam_groups"),
    ],
)
def test_bad_decoding_options_are_engine_errors(overrides: object, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        resolve_decoding(DEFAULTS, overrides)


def test_confidence_is_the_geometric_mean_of_fluency_and_grounding() -> None:
    assert draft_confidence(0.0, 1.0) == 1.0
    assert draft_confidence(math.log(0.5), 0.5) == pytest.approx(0.5)
    assert draft_confidence(-3.0, 0.9) < draft_confidence(-0.1, 0.9)
    assert draft_confidence(-0.1, 0.2) < draft_confidence(-0.1, 0.9)
    assert draft_confidence(-0.1, -0.3) == 0.0
    assert draft_confidence(None, 0.9) == 0.0 and draft_confidence(-0.1, None) == 0.0
    assert draft_confidence(2.0, 1.7) == 1.0


def test_device_and_precision_choice() -> None:
    torch, _ = libraries()
    cpu = choose_device("cpu")
    assert choose_dtype("float32", cpu) == torch.float32
    assert choose_dtype("auto", cpu) == (torch.bfloat16 if cpu_supports_bf16() else torch.float32)
    with pytest.raises(EngineError, match="dtype must be one of"):
        choose_dtype("int4", cpu)
    with pytest.raises(EngineError, match="unknown device"):
        choose_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="CUDA is not available"):
            choose_device("cuda")


def test_models_load_once_from_local_files_only(model_dir: Path, loaded: LoadedModel) -> None:
    assert load_model(ModelSpec(model=str(model_dir))) is loaded
    assert loaded.stop_ids == {loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    assert loaded.context_tokens == 512
    ids = loaded.chat_ids(CHAT)
    assert loaded.decode(ids).startswith("system\nBe kind.")  # special tokens are skipped
    opening = loaded.tokenizer.convert_tokens_to_ids("<|im_start|>")
    last = len(ids) - 1 - ids[::-1].index(opening)
    assert loaded.decode(ids[last:]) == "assistant\n"  # ends by opening the assistant's turn


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ModelSpec(model=""), "no model is configured"),
        (ModelSpec(model="nobody/no-such-model-anywhere"), "neither a model folder nor in the local"),
    ],
)
def test_unloadable_models_are_engine_errors(spec: ModelSpec, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        load_model(spec)


def test_a_tokenizer_without_chat_template_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(model_dir, tmp_path / "plain")
    config = copy / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"chat_template"', '"unused_template"'))
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(EngineError, match="no chat template"):
        load_model(ModelSpec(model=str(copy)))


def test_templates_without_a_system_role_get_it_folded_into_the_first_message(model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(model_dir, tmp_path / "nosystem")
    loaded = load_model(ModelSpec(model=str(copy), dtype="float32"))
    loaded.tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
    )
    assert loaded.decode(loaded.chat_ids(CHAT)).startswith("user\nBe kind.\n\nwhere is my order?")


def test_an_adapter_without_peft_is_a_clear_engine_error(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now raises ImportError
    with pytest.raises(EngineError, match="peft package is not installed"):
        load_model(ModelSpec(model=str(model_dir), adapter=str(tmp_path), dtype="float32"))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers method deprecated in 5.x
def test_a_lora_adapter_is_applied_and_merged(model_dir: Path, tmp_path: Path, loaded_fp32: LoadedModel) -> None:
    peft = pytest.importorskip("peft")
    torch, transformers = libraries()
    base = transformers.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    adapted = peft.get_peft_model(
        base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    adapted.save_pretrained(tmp_path / "adapter")

    with_adapter = load_model(ModelSpec(model=str(model_dir), adapter=str(tmp_path / "adapter"), dtype="float32"))
    assert not hasattr(with_adapter.model, "peft_config")  # merged into a plain model
    ids = torch.tensor([loaded_fp32.chat_ids(CHAT)])
    with torch.inference_mode():
        plain = loaded_fp32.model(input_ids=ids).logits
        changed = with_adapter.model(input_ids=ids).logits
    assert not torch.allclose(plain, changed)
    with pytest.raises(EngineError, match="is not a folder"):
        load_model(ModelSpec(model=str(model_dir), adapter=str(tmp_path / "missing"), dtype="float32"))


def test_beam_search_returns_every_groups_beams(loaded_fp32: LoadedModel) -> None:
    options = DecodingOptions(strategy="beam", max_new_tokens=12, num_beams=4, num_beam_groups=2, diversity_penalty=0.5)
    candidates = beam_search(loaded_fp32, loaded_fp32.chat_ids(CHAT), options, cancelled=lambda: False)
    assert [(c.group, c.rank) for c in candidates] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(0 < len(c.token_ids) <= 12 for c in candidates)
    assert len({c.token_ids for c in candidates}) == 4


def test_the_diversity_penalty_steers_later_groups_away_from_earlier_choices(loaded_fp32: LoadedModel) -> None:
    prompt = loaded_fp32.chat_ids(CHAT)
    alike = DecodingOptions(strategy="beam", max_new_tokens=8, num_beams=2, num_beam_groups=2, diversity_penalty=0.0)
    apart = DecodingOptions(strategy="beam", max_new_tokens=8, num_beams=2, num_beam_groups=2, diversity_penalty=50.0)
    same = beam_search(loaded_fp32, prompt, alike, cancelled=lambda: False)
    different = beam_search(loaded_fp32, prompt, apart, cancelled=lambda: False)
    assert same[0].token_ids == same[1].token_ids  # without a penalty both groups find the same beam
    assert different[0].token_ids == same[0].token_ids  # the first group is never penalised
    # With a huge penalty the second group never picks, at any step, the first group's token.
    first, second = different[0].token_ids, different[1].token_ids
    assert all(a != b for a, b in zip(first, second, strict=False))


def test_beam_search_stops_when_cancelled(loaded_fp32: LoadedModel) -> None:
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    options = DecodingOptions(strategy="beam", max_new_tokens=200, num_beams=2, num_beam_groups=1)
    with pytest.raises(DraftCancelled):
        beam_search(loaded_fp32, loaded_fp32.chat_ids(CHAT), options, cancelled=cancelled, poll_s=0)
    assert len(calls) == 4


def test_mean_logprob_matches_the_models_probabilities(loaded_fp32: LoadedModel) -> None:
    torch, _ = libraries()
    prompt = loaded_fp32.chat_ids(CHAT)
    with torch.inference_mode():
        out = loaded_fp32.model.generate(
            torch.tensor([prompt]), max_new_tokens=5, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    generated = out.sequences[0, len(prompt) :].tolist()
    expected = sum(float(torch.log_softmax(s[0], -1)[t]) for s, t in zip(out.scores, generated, strict=True)) / 5
    assert mean_logprob(loaded_fp32, prompt, generated) == pytest.approx(expected, abs=1e-4)
    assert mean_logprob(loaded_fp32, prompt, []) is None
