"""The per-process batcher: exact greedy output under batching, streaming, cancellation, stopping."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatdesk.drafting.base import DraftCancelled, EngineError
from chatdesk.drafting.batching import DynamicBatcher, GenerationOutput, GenerationRequest, IncrementalText
from chatdesk.drafting.generation import LoadedModel, ModelSpec, libraries, load_model

QUESTIONS = [
    "hi",
    "where is my order?",
    "I was charged twice for the same jacket, can you refund one of the payments please?",
    "Café crème 😀 — do you ship to 東京?",
    "how long does a refund take",
    "my parcel arrived damaged and the box was open, the jacket inside is torn on the left sleeve, what now?",
]


def prompt(loaded: LoadedModel, question: str) -> tuple[int, ...]:
    return tuple(loaded.chat_ids([{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]))


def request(loaded: LoadedModel, question: str, **kwargs: object) -> GenerationRequest:
    options: dict[str, object] = {"max_new_tokens": 24, "stop_ids": loaded.stop_ids, **kwargs}
    return GenerationRequest(prompt_ids=prompt(loaded, question), **options)  # type: ignore[arg-type]


@pytest.fixture
def batcher(any_loaded: LoadedModel) -> Iterator[DynamicBatcher]:
    batcher = DynamicBatcher(any_loaded, max_batch_size=8, window_s=0.002, cancel_poll_s=0.005)
    yield batcher
    batcher.close()


def run_concurrently(
    batcher: DynamicBatcher, requests: list[GenerationRequest], gap_s: float
) -> list[GenerationOutput]:
    """Each request from its own thread, arriving gap_s after the previous one."""
    results: list[GenerationOutput | None] = [None] * len(requests)

    def ask(index: int) -> None:
        time.sleep(index * gap_s)
        results[index] = batcher.generate(requests[index])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_a_request_alone_gives_what_model_generate_gives(any_loaded: LoadedModel) -> None:
    """Without the fixed batch size (exact=False) a lone request runs the shapes generate() runs."""
    torch, _ = libraries()
    loaded = any_loaded
    batcher = DynamicBatcher(loaded, max_batch_size=8, exact=False)
    for question in QUESTIONS[:3]:
        ids = prompt(loaded, question)
        alone = batcher.generate(request(loaded, question))
        with torch.inference_mode():
            expected = loaded.model.generate(
                torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=sorted(loaded.stop_ids)
            )[0, len(ids) :].tolist()
        assert alone.token_ids == [t for t in expected if t not in loaded.stop_ids][: len(alone.token_ids)]
        assert len(alone.token_ids) == 24 or expected[len(alone.token_ids)] in loaded.stop_ids
    batcher.close()


@pytest.mark.parametrize("gap_s", [0.0, 0.003])
def test_greedy_output_is_identical_alone_and_batched(batcher: DynamicBatcher, gap_s: float) -> None:
    loaded = batcher.loaded
    requests = [request(loaded, q, max_new_tokens=16 + 4 * i) for i, q in enumerate(QUESTIONS)]
    alone = [batcher.generate(r) for r in requests]
    steps_alone = batcher.stats.steps
    together = run_concurrently(batcher, requests, gap_s)
    assert [o.token_ids for o in together] == [o.token_ids for o in alone]
    assert [o.text for o in together] == [o.text for o in alone]
    assert batcher.stats.peak_batch > 1
    assert batcher.stats.steps - steps_alone < steps_alone  # they really shared steps


def test_rows_joining_a_running_batch_keep_identical_output(batcher: DynamicBatcher) -> None:
    loaded = batcher.loaded
    long = request(loaded, QUESTIONS[5], max_new_tokens=60)
    short = [request(loaded, q, max_new_tokens=8) for q in QUESTIONS[:4]]
    expected = [batcher.generate(r).token_ids for r in [long, *short]]
    results: dict[int, list[int]] = {}

    def ask(index: int, item: GenerationRequest, delay: float) -> None:
        time.sleep(delay)
        results[index] = batcher.generate(item).token_ids

    threads = [threading.Thread(target=ask, args=(0, long, 0.0))]
    threads += [threading.Thread(target=ask, args=(i + 1, r, 0.02 + 0.01 * i)) for i, r in enumerate(short)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [results[i] for i in range(5)] == expected


def test_pieces_stream_in_order_and_concatenate_to_the_text(batcher: DynamicBatcher) -> None:
    pieces: list[str] = []
    output = batcher.generate(request(batcher.loaded, QUESTIONS[3], max_new_tokens=40), on_text=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == output.text == batcher.loaded.decode(output.token_ids)
    assert output.first_token_s is not None and output.first_token_s > 0
    assert len(output.logprobs) == len(output.token_ids) and all(lp <= 0 for lp in output.logprobs)


def test_multi_byte_characters_are_never_split(loaded: LoadedModel) -> None:
    text = "Größe 😀 東京 ✓ ok"
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # characters really span several tokens
    stream = IncrementalText(loaded.decode)
    pieces = [stream.update(ids[:n]) for n in range(1, len(ids) + 1)]
    assert all("\ufffd" not in piece for piece in pieces)
    assert "".join(pieces) == text == stream.finish(ids)


def test_cancellation_stops_the_row_and_leaves_the_others_alone(batcher: DynamicBatcher) -> None:
    loaded = batcher.loaded
    other = request(loaded, QUESTIONS[2], max_new_tokens=60)
    expected = batcher.generate(other).token_ids
    pieces: list[str] = []
    results: list[list[int]] = []
    thread = threading.Thread(target=lambda: results.append(batcher.generate(other).token_ids))
    thread.start()
    started = time.monotonic()
    with pytest.raises(DraftCancelled):
        batcher.generate(
            request(loaded, QUESTIONS[1], max_new_tokens=400), on_text=pieces.append, cancelled=lambda: bool(pieces)
        )
    assert time.monotonic() - started < 5
    thread.join(timeout=60)
    assert results == [expected]
    assert batcher.generate(request(loaded, QUESTIONS[0])).token_ids  # the loop goes on


def test_a_stop_token_ends_the_reply_without_being_part_of_it(batcher: DynamicBatcher) -> None:
    loaded = batcher.loaded
    free = batcher.generate(request(loaded, QUESTIONS[1]))
    stop = free.token_ids[3]
    first = free.token_ids.index(stop)
    stopped = batcher.generate(request(loaded, QUESTIONS[1], stop_ids=frozenset({stop})))
    assert stopped.token_ids == free.token_ids[:first]
    assert stopped.finish_reason == "stop" and free.finish_reason == "length"
    assert len(free.token_ids) == 24


def test_seeded_sampling_is_reproducible_alone_and_batched(batcher: DynamicBatcher) -> None:
    loaded = batcher.loaded
    sampled = [request(loaded, q, temperature=1.0, top_p=0.9, seed=7) for q in QUESTIONS[:4]]
    alone = [batcher.generate(r).token_ids for r in sampled]
    assert [o.token_ids for o in run_concurrently(batcher, sampled, 0.0)] == alone
    greedy = [batcher.generate(request(loaded, q)).token_ids for q in QUESTIONS[:4]]
    assert alone != greedy
    other_seed = batcher.generate(request(loaded, QUESTIONS[0], temperature=1.0, seed=8, max_new_tokens=24))
    assert other_seed.token_ids != batcher.generate(request(loaded, QUESTIONS[0], temperature=1.0, seed=7)).token_ids


def test_repetition_penalty_matches_transformers(batcher: DynamicBatcher) -> None:
    torch, _ = libraries()
    loaded = batcher.loaded
    ids = prompt(loaded, QUESTIONS[2])
    ours = batcher.generate(request(loaded, QUESTIONS[2], repetition_penalty=1.5)).token_ids
    with torch.inference_mode():
        theirs = loaded.model.generate(
            torch.tensor([ids]), max_new_tokens=24, do_sample=False, repetition_penalty=1.5, eos_token_id=None
        )[0, len(ids) :].tolist()
    assert ours == theirs[: len(ours)]
    assert ours != batcher.generate(request(loaded, QUESTIONS[2])).token_ids


def test_a_prompt_filling_the_context_is_refused_and_a_failing_step_reported(batcher: DynamicBatcher) -> None:
    loaded = batcher.loaded
    with pytest.raises(EngineError, match="fills the model's whole context"):
        batcher.generate(GenerationRequest(prompt_ids=(5,) * 600, max_new_tokens=4, stop_ids=loaded.stop_ids))
    running = request(loaded, QUESTIONS[2], max_new_tokens=60)
    expected = batcher.generate(running).token_ids
    results: list[list[int]] = []
    thread = threading.Thread(target=lambda: results.append(batcher.generate(running).token_ids))
    thread.start()
    time.sleep(0.02)
    with pytest.raises(EngineError, match="generation failed"):  # a token id outside the vocabulary
        batcher.generate(GenerationRequest(prompt_ids=(10**6,), max_new_tokens=4, stop_ids=loaded.stop_ids))
    thread.join(timeout=60)
    assert results == [expected]  # the running batch went on undisturbed
    assert batcher.stats.failures == 1


def test_near_the_context_end_replies_are_cut_to_fit(batcher: DynamicBatcher) -> None:
    output = batcher.generate(GenerationRequest(prompt_ids=(5,) * 508, max_new_tokens=50, stop_ids=frozenset()))
    assert len(output.token_ids) == 4 and output.finish_reason == "length"


def test_qwen2_models_batch_exactly_too(qwen_dir: Path) -> None:
    loaded = load_model(ModelSpec(model=str(qwen_dir)))
    batcher = DynamicBatcher(loaded, max_batch_size=4, window_s=0.002)
    try:
        assert batcher.ragged
        requests = [request(loaded, q) for q in QUESTIONS[:4]]
        alone = [batcher.generate(r).token_ids for r in requests]
        assert [o.token_ids for o in run_concurrently(batcher, requests, 0.0)] == alone
    finally:
        batcher.close()


def test_one_at_a_time_when_batching_is_off(loaded: LoadedModel) -> None:
    single, batched = DynamicBatcher(loaded, max_batch_size=1), DynamicBatcher(loaded, max_batch_size=4)
    try:
        assert not single.ragged and single.capacity == 1
        requests = [request(loaded, q) for q in QUESTIONS[:3]]
        expected = [batched.generate(r).token_ids for r in requests]
        assert [o.token_ids for o in run_concurrently(single, requests, 0.0)] == expected
        assert single.stats.peak_batch == 1
    finally:
        single.close()
        batched.close()


def test_a_closed_batcher_refuses_work(loaded: LoadedModel) -> None:
    closed = DynamicBatcher(loaded)
    closed.close()
    with pytest.raises(EngineError, match="closed"):
        closed.generate(request(loaded, QUESTIONS[0]))


def test_the_inexact_mode_attends_all_rows_at_once(loaded_fp32: LoadedModel) -> None:
    """Masked attention over the longest row: the same tokens whenever no near-tie flips (float32 here)."""
    inexact = DynamicBatcher(loaded_fp32, max_batch_size=8, window_s=0.002, exact=False)
    try:
        requests = [request(loaded_fp32, q) for q in QUESTIONS]
        alone = [inexact.generate(r).token_ids for r in requests]
        assert [o.token_ids for o in run_concurrently(inexact, requests, 0.0)] == alone
    finally:
        inexact.close()


def test_sliding_window_models_run_one_at_a_time(qwen_dir: Path, tmp_path: Path) -> None:
    torch, _ = libraries()
    copy = shutil.copytree(qwen_dir, tmp_path / "sliding")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "use_sliding_window": True, "sliding_window": 16}))
    loaded = load_model(ModelSpec(model=str(copy), dtype="float32"))
    batcher = DynamicBatcher(loaded, max_batch_size=8)
    try:
        assert not batcher.ragged and batcher.capacity == 1
        ids = prompt(loaded, QUESTIONS[2])
        output = batcher.generate(request(loaded, QUESTIONS[2]))
        with torch.inference_mode():
            expected = loaded.model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=None)
        assert output.token_ids == expected[0, len(ids) :].tolist()[: len(output.token_ids)]
    finally:
        batcher.close()


def test_rows_of_many_widths_share_attention_calls_and_keep_identical_output(any_loaded: LoadedModel) -> None:
    """Prompts spread over several attention widths (blocks of 64 key columns), joining at staggered
    times, some finishing early (free slots between rows): grouped attention must still give each
    row its lone-run bits."""
    from chatdesk.drafting import batching

    loaded = any_loaded
    batcher = DynamicBatcher(loaded, max_batch_size=12, window_s=0.002)
    try:
        assert batcher.ragged and loaded.model._chatdesk_grouped  # rows really are grouped
        questions = [" ".join(QUESTIONS[: 1 + i % len(QUESTIONS)]) * (1 + i // 4) for i in range(12)]
        requests = [request(loaded, q, max_new_tokens=12 + 5 * (i % 5)) for i, q in enumerate(questions)]
        assert len({batching._decode_width(len(r.prompt_ids)) for r in requests}) >= 3
        alone = [batcher.generate(r).token_ids for r in requests]
        assert [o.token_ids for o in run_concurrently(batcher, requests, 0.004)] == alone
        assert batcher.stats.peak_batch > 4
    finally:
        batcher.close()
    # The plan groups neighbouring rows of one width, free slots inside, into one masked call.
    calls, masks = batching._attention_plan([140, 0, 100, 70, 65, 0, 0, 5], True, loaded.device)
    assert calls == [(0, 1, 192), (2, 5, 128), (7, 8, 64)]
    assert masks.shape == (8, 192) and bool(masks[3, :70].eq(0).all()) and bool(masks[3, 70:].isinf().all())
    calls, _ = batching._attention_plan([140, 0, 100, 70], False, loaded.device)
    assert calls == [(0, 1, 192), (2, 3, 128), (3, 4, 128)]


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_the_lean_decode_step_gives_transformers_bits(family: str, any_loaded: LoadedModel, qwen_dir: Path) -> None:
    """The batcher's lean forward (decode_step.LeanDecoder) is used for Llama-family models and gives
    the very logits transformers' own forward gives, for prompts and step after step, rows of
    several widths."""
    from chatdesk.drafting import batching

    torch, _ = libraries()
    loaded = any_loaded if family == "llama" else load_model(ModelSpec(model=str(qwen_dir)))
    DynamicBatcher(loaded, max_batch_size=6).close()  # switches the model to ragged attention
    lean = batching._lean_decoder(loaded, 6)
    assert lean is not None and lean.packed == (loaded.device.type == "cpu")
    prompts = [prompt(loaded, q) for q in QUESTIONS[:4]]
    kvs = [batching._RaggedKV(loaded, 6, lean=None), batching._RaggedKV(loaded, 6, lean=lean)]
    with torch.inference_mode():
        for slot, ids in enumerate(prompts):
            reference, prefilled = (kv.prefill(slot, ids, 8) for kv in kvs)
            assert torch.equal(reference, prefilled)
            for kv in kvs:
                kv.admit(slot)
        for token in (11, 12, 13):
            (reference, slots), (stepped, lean_slots) = (kv.step([token] * len(prompts)) for kv in kvs)
            assert slots == lean_slots and torch.equal(reference, stepped)


def test_models_the_lean_step_does_not_fit_take_transformers_forward(loaded: LoadedModel) -> None:
    from chatdesk.drafting.decode_step import LeanDecoder

    torch, _ = libraries()
    model = loaded.model
    assert LeanDecoder.for_model(model, 4) is not None
    original = model.model.layers[0].mlp.up_proj
    model.model.layers[0].mlp.up_proj = torch.nn.Sequential(original)  # as an adapter wraps a layer
    try:
        assert LeanDecoder.for_model(model, 4) is None
    finally:
        model.model.layers[0].mlp.up_proj = original
