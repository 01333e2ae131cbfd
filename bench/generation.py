"""Draft generation throughput: one `generate` per request in sequence, the desk's dynamic batcher, and
transformers' own continuous batching, side by side.

Builds a tiny random Llama-shaped chat model (about 5M parameters: hidden 256, 4 layers, 4 query
heads sharing one key/value head — the grouped-query attention of Llama 3 and Qwen2 —, byte-level
BPE vocabulary of 8,192) unless --model names a folder, then serves the same N conversations
arriving at staggered times (Poisson, mean gap --gap-ms) both ways:

  naive    one worker thread, first come first served, one `model.generate` per request;
  batched  one thread per request calling DynamicBatcher.generate (continuous batching), as the
           worker's task threads do;
  library  transformers' continuous-batching manager (`model.init_continuous_batching`, paged KV
           cache, the version pinned in requirements.txt): one thread per request calling
           `add_request` at its arrival time, one collecting finished results.

All use greedy decoding; the batcher's replies must come out identical to the naive ones (the
library's are compared too, and reported: its paged attention rounds differently in bfloat16). The
three alternate for --rounds rounds and each reports its fastest round: on a shared machine noise only
ever slows a run, and alternating exposes all three to the same drift. Prints tokens/s (all tokens
over the time from the first arrival to the last reply), per-request latency (arrival to reply)
p50/p99, and their ratios.

    .venv/bin/python bench/generation.py [--model DIR] [--requests 32] [--new-tokens 64]
                                         [--gap-ms 5] [--rounds 3] [--threads 1] [--dtype auto]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatdesk.drafting import generation  # noqa: E402
from chatdesk.drafting.batching import DynamicBatcher, GenerationRequest  # noqa: E402
from chatdesk.drafting.generation import LoadedModel, ModelSpec, libraries, load_model  # noqa: E402
from chatdesk.drafting.prompt import ChatMessage  # noqa: E402
from tests.drafting.tiny_models import build_chat_model  # noqa: E402

QUESTIONS = [
    "where is my order?",
    "how do I return a jacket that does not fit?",
    "my card was declined twice although there is money on the account, what is wrong?",
    "can I change my delivery address",
    "how long does a refund take",
    "I forgot my password and the reset mail never arrives, I checked spam too",
    "do you ship to Canada?",
    "I was charged twice for the same order, please refund one of the payments",
    "my parcel arrived damaged",
    "how do I use a promo code",
]


def conversations(loaded: LoadedModel, count: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        messages: list[ChatMessage] = [
            {"role": "system", "content": "You answer customers of Northwind Goods from the passages below."}
        ]
        for _ in range(rng.randint(0, 2)):
            messages += [
                {"role": "user", "content": rng.choice(QUESTIONS)},
                {"role": "assistant", "content": "Let me check that for you."},
            ]
        messages.append({"role": "user", "content": rng.choice(QUESTIONS)})
        prompts.append(tuple(loaded.chat_ids(messages)))
    return prompts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_naive(loaded: LoadedModel, prompts: list[tuple[int, ...]], arrivals: list[float], new_tokens: int) -> dict:
    torch, _ = libraries()
    outputs, latencies = [], []
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for prompt, arrival in zip(prompts, arrivals, strict=True):
            time.sleep(max(0.0, start + arrival - time.perf_counter()))
            ids = torch.tensor([prompt])
            out = loaded.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=sorted(loaded.stop_ids),
                pad_token_id=loaded.pad_id,
            )
            tokens = out[0, len(prompt) :].tolist()
            outputs.append([t for t in tokens if t not in loaded.stop_ids][: _until_stop(tokens, loaded)])
            latencies.append(time.perf_counter() - start - arrival)
    return {
        "outputs": outputs,
        "latencies": latencies,
        "elapsed": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
    }


def _until_stop(tokens: list[int], loaded: LoadedModel) -> int:
    return next((i for i, t in enumerate(tokens) if t in loaded.stop_ids), len(tokens))


def run_batched(
    batcher: DynamicBatcher, prompts: list[tuple[int, ...]], arrivals: list[float], new_tokens: int
) -> dict:
    outputs: list[list[int]] = [[] for _ in prompts]
    latencies = [0.0] * len(prompts)
    start, cpu = time.perf_counter(), time.process_time()

    def ask(index: int) -> None:
        time.sleep(max(0.0, start + arrivals[index] - time.perf_counter()))
        pieces: list[str] = []
        request = GenerationRequest(
            prompt_ids=prompts[index], max_new_tokens=new_tokens, stop_ids=batcher.loaded.stop_ids
        )
        outputs[index] = batcher.generate(request, on_text=pieces.append).token_ids
        latencies[index] = time.perf_counter() - start - arrivals[index]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "outputs": outputs,
        "latencies": latencies,
        "elapsed": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
    }


def run_library(loaded: LoadedModel, prompts: list[tuple[int, ...]], arrivals: list[float], new_tokens: int, *,
                batch_size: int) -> dict:  # fmt: skip
    """transformers' own continuous batching on the same requests (a fresh manager per round, started and
    warmed before the clock starts, as a long-lived worker would hold it)."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    torch, _ = libraries()
    config = GenerationConfig(
        max_new_tokens=new_tokens, do_sample=False, eos_token_id=sorted(loaded.stop_ids), pad_token_id=loaded.pad_id
    )
    # The KV cache is sized from the GPU's free memory unless told: here, enough 256-token pages for every
    # request at once (prompts and replies are far below a page or two each).
    page = 256
    longest = max(len(p) for p in prompts) + new_tokens
    cache = ContinuousBatchingConfig(
        page_size=page,
        num_blocks=len(prompts) * (longest // page + 1) + 4,
        max_batch_tokens=2048,
        max_requests_per_batch=batch_size,
    )
    outputs: list[list[int]] = [[] for _ in prompts]
    latencies = [0.0] * len(prompts)
    with torch.inference_mode():
        manager = loaded.model.init_continuous_batching(generation_config=config, continuous_batching_config=cache)
        manager.start()
        try:
            start, cpu = time.perf_counter(), time.process_time()

            def ask(index: int) -> None:
                time.sleep(max(0.0, start + arrivals[index] - time.perf_counter()))
                manager.add_request(list(prompts[index]), request_id=str(index), max_new_tokens=new_tokens)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
            for thread in threads:
                thread.start()
            waiting = set(range(len(prompts)))
            while waiting:
                result = manager.get_result(timeout=30)
                if result is None:
                    raise RuntimeError(f"transformers' continuous batching stopped with {len(waiting)} requests left")
                if not result.is_finished():
                    continue
                index = int(result.request_id)
                tokens = list(result.generated_tokens)
                outputs[index] = [t for t in tokens if t not in loaded.stop_ids][: _until_stop(tokens, loaded)]
                latencies[index] = time.perf_counter() - start - arrivals[index]
                waiting.discard(index)
            elapsed, used = time.perf_counter() - start, time.process_time() - cpu
            for thread in threads:
                thread.join()
        finally:
            manager.stop(block=True)
            loaded.model.destroy_cached_continuous_batching_manager()
    return {"outputs": outputs, "latencies": latencies, "elapsed": elapsed, "cpu": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model folder (default: build the tiny model)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--gap-ms", type=float, default=5.0, help="mean gap between arrivals (Poisson)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (workers run 1 by default)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=8192, help="vocabulary of the built model")
    parser.add_argument("--kv-heads", type=int, default=1, help="key/value heads of the built model (4 query heads)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="naive, batched and library runs, alternating; the best counts"
    )
    parser.add_argument(
        "--inexact", action="store_true", help="step only the live rows (no fixed batch size for the linear layers)"
    )
    args = parser.parse_args()

    torch, _ = libraries()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or str(
            build_chat_model(
                Path(folder), vocab_size=args.vocab, hidden=256, layers=4, heads=4, kv_heads=args.kv_heads,
                intermediate=688, context=1024, init_range=0.05,
            )
        )  # fmt: skip
        loaded = load_model(ModelSpec(model=model, dtype=args.dtype))
        # An independent copy for the library: the batcher switches its model to its own attention kernel,
        # which transformers' continuous batching refuses.
        library_model = generation._load(ModelSpec(model=model, dtype=args.dtype))
    parameters = sum(p.numel() for p in loaded.model.parameters())
    prompts = conversations(loaded, args.requests, args.seed)
    rng = random.Random(args.seed)
    arrivals, clock = [], 0.0
    for _ in prompts:
        arrivals.append(clock)
        clock += rng.expovariate(1000 / args.gap_ms) if args.gap_ms else 0.0
    batcher = DynamicBatcher(
        loaded,
        max_batch_size=args.batch_size,
        window_s=args.window_ms / 1000,
        stream_interval_s=0.05,
        exact=not args.inexact,
    )
    # Warm both paths (first calls allocate, pick kernels and start the loop thread).
    run_naive(loaded, prompts[:2], [0.0, 0.0], 4)
    run_batched(batcher, prompts[:2], [0.0, 0.0], 4)
    run_library(library_model, prompts[:2], [0.0, 0.0], 4, batch_size=args.batch_size)

    naive_runs, batched_runs, library_runs = [], [], []
    for _ in range(max(args.rounds, 1)):
        naive_runs.append(run_naive(loaded, prompts, arrivals, args.new_tokens))
        before = replace(batcher.stats)
        batched_runs.append(run_batched(batcher, prompts, arrivals, args.new_tokens))
        batched_runs[-1]["stats"] = (before, replace(batcher.stats))
        library_runs.append(run_library(library_model, prompts, arrivals, args.new_tokens, batch_size=args.batch_size))
    batcher.close()
    naive = min(naive_runs, key=lambda run: run["elapsed"])
    batched = min(batched_runs, key=lambda run: run["elapsed"])
    library = min(library_runs, key=lambda run: run["elapsed"])
    before, stats = batched["stats"]
    steps = max(stats.steps - before.steps, 1)

    tokens = sum(len(o) for o in naive["outputs"])
    naive_tok_s = tokens / naive["elapsed"]
    batched_tok_s = sum(len(o) for o in batched["outputs"]) / batched["elapsed"]
    library_tok_s = sum(len(o) for o in library["outputs"]) / library["elapsed"]
    identical = all(run["outputs"] == naive["outputs"] for run in [*naive_runs, *batched_runs])
    library_same = sum(a == b for a, b in zip(library["outputs"], naive["outputs"], strict=True))
    mean_batch = (stats.row_steps - before.row_steps) / steps
    print(f"model: {model if args.model else 'tiny random Llama'}, {parameters / 1e6:.1f}M parameters, {loaded.dtype}")
    print(
        f"{args.requests} conversations, Poisson arrivals every {args.gap_ms:g} ms on average "
        f"(last at {arrivals[-1] * 1000:.0f} ms), {args.new_tokens} new tokens max, greedy, "
        f"{args.threads} torch thread(s)"
    )
    rounds = ", ".join(
        f"{n['elapsed']:.2f}/{b['elapsed']:.2f}/{x['elapsed']:.2f} s"
        for n, b, x in zip(naive_runs, batched_runs, library_runs, strict=True)
    )
    print(f"rounds (naive/batched/library wall): {rounds}; the fastest of each below")
    print(f"{'':10}{'tokens/s':>10}{'p50 s':>9}{'p99 s':>9}{'wall s':>9}{'cpu s':>9}{'tok/cpu-s':>11}")
    runs = (("naive", naive, naive_tok_s), ("batched", batched, batched_tok_s), ("library", library, library_tok_s))
    for name, run, rate in runs:
        p50, p99 = percentile(run["latencies"], 0.5), percentile(run["latencies"], 0.99)
        per_cpu = tokens / run["cpu"]
        print(f"{name:10}{rate:>10.0f}{p50:>9.3f}{p99:>9.3f}{run['elapsed']:>9.2f}{run['cpu']:>9.2f}{per_cpu:>11.0f}")
    print(
        f"ratio {batched_tok_s / naive_tok_s:.1f}x (per CPU second {naive['cpu'] / batched['cpu']:.1f}x); "
        f"mean batch {mean_batch:.1f} rows/step, {'identical' if identical else 'DIFFERENT'} outputs "
        f"({tokens} tokens, every round)"
    )
    print(
        f"batched / library {batched_tok_s / library_tok_s:.2f}x tokens/s; library {library_tok_s / naive_tok_s:.1f}x "
        f"naive, {library_same}/{len(prompts)} replies identical to naive"
    )
    print(
        f"batcher: {steps} steps of {(stats.step_s - before.step_s) / steps * 1000:.1f} ms, "
        f"{stats.prefills - before.prefills} prefills in {stats.prefill_s - before.prefill_s:.2f} s"
    )
    print(
        json.dumps(
            {
                "naive_tok_s": round(naive_tok_s, 1),
                "batched_tok_s": round(batched_tok_s, 1),
                "library_tok_s": round(library_tok_s, 1),
                "ratio": round(batched_tok_s / naive_tok_s, 2),
                "batched_over_library": round(batched_tok_s / library_tok_s, 2),
                "library_identical": library_same,
                "p50_s_naive": round(percentile(naive["latencies"], 0.5), 3),
                "p50_s_batched": round(percentile(batched["latencies"], 0.5), 3),
                "p50_s_library": round(percentile(library["latencies"], 0.5), 3),
                "identical": identical,
            }
        )
    )


if __name__ == "__main__":
    main()
