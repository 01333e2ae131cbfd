"""Topic classification: which topic a customer message belongs to, and how sure the desk may be.

The classifier learns from past approved customer messages (and knowledge-base example questions),
each labelled with a topic. It works on sentence vectors (the app's encoder, or an encoder
fine-tuned by `tune_encoder`), so the classifier itself is plain numpy and independent of Django;
only the encoder functions at the end (loading, encoding, tuning) need torch and sentence-transformers,
imported lazily; `drafting.encoder` loads the shared encoder through them.

Method (chosen by measurement on BANKING77 and CLINC150 held-out data):

* a multinomial logistic-regression head on the vectors (features standardised, L2-regularised,
  full-batch Adam for a fixed number of iterations), blended with similarity-weighted votes of the
  k nearest training messages; the blend weight is chosen on a held-out slice of the training data
  unless given;
* the topic is the arg-max of that blend; `alternatives` are the best topics, chosen one first.

Confidence, in [0, 1], is what the escalation threshold applies to. It is a monotone map of an
in-scope score: the head's largest logit plus the cosine similarity to the closest training message,
each standardised over the training messages. The map is a logistic curve fitted on the held-out
slice to the event "the selected topic was right", so on messages like the training ones it reads
as the probability that the topic is right. Messages unlike every training message (out of scope)
get low values even when the head is sure among its own topics; that is why the similarity term is
there. (A classifier fitted on too few messages to hold any out, under about 70, uses the cosine
similarity to the closest training message instead; info["calibrated"] says which.) The held-out
slice has no out-of-scope messages, so the confidence of an out-of-scope message
is not a calibrated probability: choose the threshold on labelled validation messages of the desk
(`chatdesk.knowledge.evaluation.threshold_larson` or `threshold_product`; the map is monotone, so
both rules apply to it directly).

Determinism: the same vectors, topics, order and seed give the same artefact and predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ARTEFACT_FORMAT = "chatdesk-topic-classifier"
ARTEFACT_VERSION = 1
ARRAYS_FILE = "classifier.npz"
META_FILE = "classifier.json"
ENCODER_DIR = "encoder"

KNN_WEIGHTS = (0.0, 0.15, 0.3, 0.5, 0.7)
STATS_ROWS = 4000

ProgressCallback = Callable[[int, int, str], None]
EncodeFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TopicPrediction:
    """One message's prediction: topic, confidence in [0, 1], and the best topics after it.

    probability is the head's (temperature-scaled) share for the topic; similarity is the cosine
    similarity between the message and the closest training message of any topic.
    alternatives lists (topic, blended score) for the top-k topics, best first, the chosen one included.
    """

    topic: str
    confidence: float
    probability: float
    similarity: float
    alternatives: tuple[tuple[str, float], ...]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError("vectors must be a 2-D array, one row per message")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def _stratified_holdout(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of held-out rows: about `fraction` of each topic that has 3 or more rows."""
    mask = np.zeros(len(y), dtype=bool)
    for t in np.unique(y):
        idx = np.flatnonzero(y == t)
        if len(idx) < 3:
            continue
        take = max(1, round(fraction * len(idx)))
        mask[rng.choice(idx, size=min(take, len(idx) - 1), replace=False)] = True
    return mask


class TopicClassifier:
    """Selects a topic for each message vector; fit once, predict many times, save and load.

    Contract:
    * fit(vectors, topics): vectors are one row per training message (any float array; rows are
      normalised to unit length), topics one label per row, at least two distinct topics.
    * predict(vectors, top_k): one `TopicPrediction` per row, in order. Predictions for a row do not
      depend on the other rows of the batch (up to float rounding, ~1e-7).
    * Same inputs, same order and same seed give the same artefact and the same predictions.
    * Query vectors must come from the same encoder as the training vectors; when the encoder was
      fine-tuned (`tune_encoder`), set `encoder_path` before save() so the artefact carries it.

    Parameters: l2, iterations, learning_rate configure the logistic-regression head; knn_k and
    knn_tau the neighbour votes (weight exp((sim - best_sim) / knn_tau)); knn_weight the share of the
    votes in the blend, None to choose it on the held-out slice (right for the app's frozen encoder;
    with an encoder fine-tuned on these same messages that slice is not unseen by the encoder, so
    pass 0.5); holdout_fraction the share of each topic held out for calibration; seed the split.
    """

    def __init__(
        self,
        *,
        l2: float = 1e-3,
        iterations: int = 300,
        learning_rate: float = 0.05,
        knn_k: int = 10,
        knn_tau: float = 0.05,
        knn_weight: float | None = None,
        holdout_fraction: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.params: dict[str, Any] = {
            "l2": l2,
            "iterations": iterations,
            "learning_rate": learning_rate,
            "knn_k": knn_k,
            "knn_tau": knn_tau,
            "knn_weight": knn_weight,
            "holdout_fraction": holdout_fraction,
            "seed": seed,
        }
        self.topics: list[str] = []
        self.encoder_path: str | None = None
        self.info: dict[str, Any] = {}
        self._arrays: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------- fitting

    @property
    def fitted(self) -> bool:
        return bool(self._arrays)

    def fit(
        self, vectors: np.ndarray, topics: Sequence[str], *, callback: ProgressCallback | None = None
    ) -> TopicClassifier:
        """Learn from labelled message vectors. Returns self.

        Steps (reported through callback(step, total, message)): fit the head on all but a held-out
        slice, fit the temperature and the confidence curve on that slice, refit the head on all rows.
        """
        started = time.perf_counter()
        x = _unit(vectors)
        if len(topics) != len(x):
            raise ValueError("one topic per vector is needed")
        names = sorted(set(topics))
        if len(names) < 2:
            raise ValueError("at least two topics are needed")
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[t] for t in topics], dtype=np.int64)
        p = self.params
        rng = np.random.default_rng(p["seed"])
        total = 3

        def report(step: int, message: str) -> None:
            if callback is not None:
                callback(step, total, message)

        held = _stratified_holdout(y, float(p["holdout_fraction"]), rng)
        # without a usable held-out slice (fewer than 10 held-out messages, or a topic left with no
        # training message) confidence falls back to the cosine similarity of the closest message
        temperature, curve, calibrated = 1.0, (1.0, 0.0), False
        knn_weight = 0.3 if p["knn_weight"] is None else float(p["knn_weight"])
        if held.sum() >= 10 and len(np.unique(y[~held])) == len(names):
            report(0, f"fitting the head on {int((~held).sum())} of {len(x)} messages")
            mu, sd, w, b = self._fit_head(x[~held], y[~held], len(names))
            arrays = {"x": x[~held], "y": y[~held], "mu": mu, "sd": sd, "w": w, "b": b}
            logits = self._logits(arrays, x[held])
            temperature = _fit_temperature(logits, y[held])
            arrays["score_stats"] = self._score_stats(arrays)
            report(1, f"calibrating confidence on {int(held.sum())} held-out messages")
            _, raw, probs, votes, _ = self._scores(arrays, x[held], temperature, 0.0)
            if p["knn_weight"] is None:
                accuracy = {
                    a: float((((1 - a) * probs + a * votes).argmax(axis=1) == y[held]).mean()) for a in KNN_WEIGHTS
                }
                knn_weight = max(KNN_WEIGHTS, key=lambda a: (accuracy[a], -abs(a - 0.3)))
            blend = (1 - knn_weight) * probs + knn_weight * votes
            correct = (blend.argmax(axis=1) == y[held]).astype(np.float64)
            curve, calibrated = _fit_logistic_1d(raw, correct), True
        report(2, f"fitting the head on all {len(x)} messages")
        mu, sd, w, b = self._fit_head(x, y, len(names))
        self._arrays = {"x": x, "y": y, "mu": mu, "sd": sd, "w": w, "b": b}
        self._arrays["score_stats"] = self._score_stats(self._arrays)
        self._arrays["temperature"] = np.array([temperature], dtype=np.float64)
        self._arrays["curve"] = np.array(curve, dtype=np.float64)
        self._arrays["calibrated"] = np.array([calibrated])
        self._arrays["knn_weight"] = np.array([knn_weight], dtype=np.float64)
        self.topics = names
        self.info = {
            "n_messages": len(x),
            "n_topics": len(names),
            "dimension": int(x.shape[1]),
            "held_out": int(held.sum()),
            "temperature": temperature,
            "knn_weight": knn_weight,
            "confidence_curve": list(curve),
            "calibrated": calibrated,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        report(3, "done")
        return self

    def fit_texts(
        self,
        texts: Sequence[str],
        topics: Sequence[str],
        encode: EncodeFn,
        *,
        callback: ProgressCallback | None = None,
    ) -> TopicClassifier:
        """fit() on encode(texts); encode returns one unit vector per text."""
        return self.fit(encode(list(texts)), topics, callback=callback)

    def _fit_head(
        self, x: np.ndarray, y: np.ndarray, n_topics: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Multinomial logistic regression, full-batch Adam, L2 on weights; deterministic."""
        p = self.params
        mu = x.mean(axis=0)
        sd = x.std(axis=0) + 1e-6
        z = ((x - mu) / sd).astype(np.float32)
        n, d = z.shape
        w = np.zeros((d, n_topics), dtype=np.float32)
        b = np.zeros(n_topics, dtype=np.float32)
        onehot = np.zeros((n, n_topics), dtype=np.float32)
        onehot[np.arange(n), y] = 1.0
        m_w, v_w = np.zeros_like(w), np.zeros_like(w)
        m_b, v_b = np.zeros_like(b), np.zeros_like(b)
        beta1, beta2, eps, lr, l2 = 0.9, 0.999, 1e-8, float(p["learning_rate"]), float(p["l2"])
        for it in range(1, int(p["iterations"]) + 1):
            g = (_softmax(z @ w + b) - onehot) / n
            g_w = z.T @ g + l2 * w
            g_b = g.sum(axis=0)
            m_w = beta1 * m_w + (1 - beta1) * g_w
            v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
            m_b = beta1 * m_b + (1 - beta1) * g_b
            v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
            c1, c2 = 1 - beta1**it, 1 - beta2**it
            w -= lr * (m_w / c1) / (np.sqrt(v_w / c2) + eps)
            b -= lr * (m_b / c1) / (np.sqrt(v_b / c2) + eps)
        return mu.astype(np.float32), sd.astype(np.float32), w, b

    @staticmethod
    def _logits(arrays: dict[str, np.ndarray], q: np.ndarray) -> np.ndarray:
        return (((q - arrays["mu"]) / arrays["sd"]) @ arrays["w"] + arrays["b"]).astype(np.float64)

    def _score_stats(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Mean and spread of the largest logit and of the nearest-neighbour similarity on training rows.

        Measured on at most STATS_ROWS rows (an evenly spaced, deterministic subset) so the cost stays
        linear in the number of messages; a row's nearest neighbour excludes the row itself.
        """
        x = arrays["x"]
        rows = np.unique(np.linspace(0, len(x) - 1, num=min(len(x), STATS_ROWS)).astype(np.int64))
        top = self._logits(arrays, x[rows]).max(axis=1)
        nearest = np.empty(len(rows), dtype=np.float64)
        for start in range(0, len(rows), 1024):
            chunk = rows[start : start + 1024]
            s = (x[chunk] @ x.T).astype(np.float64)
            s[np.arange(len(chunk)), chunk] = -np.inf
            nearest[start : start + len(chunk)] = s.max(axis=1)
        return np.array([top.mean(), top.std() + 1e-9, nearest.mean(), nearest.std() + 1e-9], dtype=np.float64)

    def _scores(
        self,
        arrays: dict[str, np.ndarray],
        q: np.ndarray,
        temperature: float,
        knn_weight: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(blended topic scores, raw in-scope score, head probabilities, k-NN votes, nearest similarity)."""
        p = self.params
        logits = self._logits(arrays, q)
        probs = _softmax(logits / temperature)
        x, y = arrays["x"], arrays["y"]
        n_topics = probs.shape[1]
        k = min(int(p["knn_k"]), len(x))
        votes = np.zeros_like(probs)
        nearest = np.empty(len(q), dtype=np.float64)
        for start in range(0, len(q), 1024):
            s = (q[start : start + 1024] @ x.T).astype(np.float64)
            idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
            sims = np.take_along_axis(s, idx, axis=1)
            top = sims.max(axis=1)
            nearest[start : start + len(s)] = top
            weight = np.exp((sims - top[:, None]) / float(p["knn_tau"]))
            rows = np.repeat(np.arange(len(s)), k)
            block = np.zeros((len(s), n_topics))
            np.add.at(block, (rows, y[idx].ravel()), weight.ravel())
            votes[start : start + len(s)] = block / block.sum(axis=1, keepdims=True)
        blend = (1 - knn_weight) * probs + knn_weight * votes
        st = arrays["score_stats"]
        raw = (logits.max(axis=1) - st[0]) / st[1] + (nearest - st[2]) / st[3]
        return blend, raw, probs, votes, nearest

    # -------------------------------------------------------------- predicting

    def predict(self, vectors: np.ndarray, *, top_k: int = 3) -> list[TopicPrediction]:
        """One TopicPrediction per row of vectors (see TopicPrediction and the module docstring for confidence)."""
        if not self.fitted:
            raise RuntimeError("the classifier is not fitted")
        q = _unit(vectors)
        if len(q) == 0:
            return []
        temperature = float(self._arrays["temperature"][0])
        slope, intercept = (float(v) for v in self._arrays["curve"])
        knn_weight = float(self._arrays["knn_weight"][0])
        blend, raw, probs, _, nearest = self._scores(self._arrays, q, temperature, knn_weight)
        if bool(self._arrays["calibrated"][0]):
            confidence = _sigmoid(slope * raw + intercept)
        else:  # too few messages to hold any out: fall back to the closest message's cosine similarity
            confidence = np.clip(nearest, 0.0, 1.0)
        k = max(1, min(top_k, len(self.topics)))
        order = np.argsort(-blend, axis=1, kind="stable")[:, :k]
        out = []
        for i in range(len(q)):
            best = int(order[i, 0])
            out.append(
                TopicPrediction(
                    topic=self.topics[best],
                    confidence=float(np.clip(confidence[i], 0.0, 1.0)),
                    probability=float(probs[i, best]),
                    similarity=float(nearest[i]),
                    alternatives=tuple((self.topics[int(j)], float(blend[i, j])) for j in order[i]),
                )
            )
        return out

    def predict_texts(
        self, texts: Sequence[str], encode: EncodeFn | None = None, *, top_k: int = 3
    ) -> list[TopicPrediction]:
        """predict() on encode(texts); without encode, the artefact's own tuned encoder is used."""
        if encode is None:
            if self.encoder_path is None:
                raise ValueError("this classifier has no encoder of its own; pass encode")
            encode = load_encoder(self.encoder_path)
        return self.predict(encode(list(texts)), top_k=top_k)

    # ------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the artefact directory: classifier.npz, classifier.json and, if any, the tuned encoder."""
        if not self.fitted:
            raise RuntimeError("the classifier is not fitted")
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        np.savez(target / ARRAYS_FILE, allow_pickle=False, **self._arrays)
        encoder_rel = None
        if self.encoder_path is not None:
            source = Path(self.encoder_path).resolve()
            dest = (target / ENCODER_DIR).resolve()
            if source != dest:
                if dest.exists():
                    shutil.rmtree(dest)
                shutil.copytree(source, dest)
            encoder_rel = ENCODER_DIR
        meta = {
            "format": ARTEFACT_FORMAT,
            "version": ARTEFACT_VERSION,
            "method": "logreg+knn",
            "params": self.params,
            "topics": self.topics,
            "encoder": encoder_rel,
            "info": self.info,
        }
        (target / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TopicClassifier:
        """Read an artefact directory written by save(); refuses other formats and newer versions."""
        source = Path(path)
        meta = json.loads((source / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != ARTEFACT_FORMAT:
            raise ValueError(f"{source} is not a topic-classifier artefact")
        if int(meta.get("version", 0)) > ARTEFACT_VERSION:
            raise ValueError(f"artefact version {meta['version']} is newer than this code ({ARTEFACT_VERSION})")
        classifier = cls(**meta["params"])
        with np.load(source / ARRAYS_FILE) as data:
            classifier._arrays = {name: data[name] for name in data.files}
        classifier.topics = list(meta["topics"])
        classifier.info = dict(meta.get("info", {}))
        if meta.get("encoder"):
            classifier.encoder_path = str(source / meta["encoder"])
        return classifier


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising held-out negative log-likelihood (grid over log T)."""
    best_t, best_nll = 1.0, np.inf
    rows = np.arange(len(y))
    for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 120)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float(-(z[rows, y] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow, and still strictly increasing far into the tails."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def _fit_logistic_1d(score: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of P(correct) = sigmoid(slope * score + intercept); slope kept >= 0.

    Penalised maximum likelihood (small ridge, so that an all-correct held-out slice still gives a
    finite curve) by Newton's method with step halving.
    """
    s = np.asarray(score, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    centre, spread = float(s.mean()), float(s.std() + 1e-9)
    design = np.stack([(s - centre) / spread, np.ones_like(s)], axis=1)
    ridge = 1e-2 * len(s) ** 0.5
    rate = float(np.clip(c.mean(), 0.01, 0.99))
    theta = np.array([0.0, np.log(rate / (1 - rate))])

    def loss(th: np.ndarray) -> float:
        z = design @ th
        return float(np.sum(np.logaddexp(0.0, z) - c * z) + 0.5 * ridge * th @ th)

    current = loss(theta)
    for _ in range(100):
        pr = _sigmoid(design @ theta)
        grad = design.T @ (pr - c) + ridge * theta
        hess = design.T @ (design * (pr * (1 - pr))[:, None]) + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-6:
            candidate = theta - size * step
            value = loss(candidate)
            if value <= current:
                break
            size /= 2
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if improvement < 1e-10:
            break
    slope = max(float(theta[0]) / spread, 1e-6)
    intercept = float(theta[1]) - slope * centre
    return slope, intercept


# ------------------------------------------------------------------ encoders


def load_encoder(path: str | os.PathLike[str], *, threads: int | None = None) -> EncodeFn:
    """An encode function for a sentence-transformers model directory (CPU, unit vectors)."""
    return encode_with(sentence_model(path, threads))


def sentence_model(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """The sentence-transformers model in `path`, on the CPU; `threads` sets torch's thread count."""
    import torch
    from sentence_transformers import SentenceTransformer

    if threads is not None:
        torch.set_num_threads(threads)
    return SentenceTransformer(str(path), device="cpu")


def encoder_changes(base_path: str | os.PathLike[str], tuned_path: str | os.PathLike[str]) -> bytes:
    """The tensors of a tuned encoder (`tune_encoder`) that differ from its base, as safetensors
    bytes: about 40 MB for MiniLM, whose word embeddings stay frozen, instead of the whole model."""
    from safetensors.torch import save

    base = sentence_model(base_path).state_dict()
    tuned = sentence_model(tuned_path).state_dict()
    changed = {name: tensor.contiguous() for name, tensor in tuned.items() if not tensor.equal(base[name])}
    return bytes(save(changed))


def load_encoder_with_changes(
    base_path: str | os.PathLike[str], changes: bytes, *, threads: int | None = None
) -> EncodeFn:
    """An encode function for the base encoder with `encoder_changes` applied."""
    from safetensors.torch import load

    model = sentence_model(base_path, threads)
    result = model.load_state_dict(load(changes), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"the encoder changes do not fit this encoder: {result.unexpected_keys[:3]}")
    return encode_with(model)


def encode_with(model: Any) -> EncodeFn:
    """The encode function of a loaded sentence-transformers model: unit float32 vectors, one row per text."""

    def encode(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, model.get_embedding_dimension() or 0), dtype=np.float32)
        v = model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(v, dtype=np.float32)

    return encode


def tune_encoder(
    texts: Sequence[str],
    topics: Sequence[str],
    base_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    epochs: float = 1.0,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    max_seq_length: int = 64,
    scale: float = 20.0,
    freeze_word_embeddings: bool = True,
    time_budget_s: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    callback: ProgressCallback | None = None,
) -> Path:
    """Fine-tune a sentence-transformers encoder on (text, topic) and save it to out_path.

    Objective: cross-entropy over cosine similarities between each message vector and one learned
    vector per topic (scale `scale`), AdamW with linear warm-up and decay, gradient clipping at 1.
    Topic vectors start at the topic centroids of the base encoder. Stops early, keeping what it
    has learned, when time_budget_s runs out. This is CPU-heavy (minutes): run it in a training
    step, not while answering customers. Needs torch and sentence-transformers.
    """
    import math
    import random

    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    random.seed(seed)
    started = time.perf_counter()
    model = sentence_model(base_path, threads)
    model.max_seq_length = max_seq_length
    names = sorted(set(topics))
    index = {name: i for i, name in enumerate(names)}
    labels = torch.tensor([index[t] for t in topics])
    text_list = list(texts)
    n = len(text_list)
    model.eval()
    with torch.no_grad():
        base = torch.from_numpy(encode_with(model)(text_list))
    head = torch.nn.Parameter(torch.stack([F.normalize(base[labels == t].mean(0), dim=0) for t in range(len(names))]))
    if freeze_word_embeddings:
        transformer: Any = model[0].auto_model
        for param in transformer.embeddings.parameters():
            param.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": params, "lr": learning_rate, "weight_decay": 0.01},
            {"params": [head], "lr": 1e-2, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, round(steps_per_epoch * epochs))
    warm = max(1, int(0.1 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    rng = np.random.default_rng(seed)
    order: list[int] = []
    model.train()
    for step in range(total):
        if time_budget_s is not None and time.perf_counter() - started > time_budget_s:
            if callback is not None:
                callback(step, total, "time budget reached; stopping early")
            break
        if not order:
            order = rng.permutation(n).tolist()
        batch, order = order[:batch_size], order[batch_size:]
        features = model.preprocess([text_list[i] for i in batch])
        vectors = model(features)["sentence_embedding"]
        logits = scale * F.normalize(vectors, dim=1) @ F.normalize(head, dim=1).T
        loss = F.cross_entropy(logits, labels[batch])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        if callback is not None and (step % 20 == 0 or step == total - 1):
            callback(step + 1, total, f"fine-tuning the encoder, loss {loss.item():.3f}")
    model.eval()
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return out
