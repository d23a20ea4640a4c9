"""Fits the classifier heads of app/analytics on the tuning sets only, and writes them beside the code.

    .venv/bin/python bench/train_heads.py

Each head is a multinomial logistic regression (numpy, L2-regularised, fitted by accelerated
gradient descent on standardised features; the standardisation is folded into the weights so
the product reads plain weights). Its input is the MiniLM embedding of the text plus VADER's
four scores (`app.analytics.head.features`). The L2 strength is chosen by 5-fold
cross-validation inside the tuning set; the held-out sets are never read here.

- emotion head: bench/data/emotion_tuning.json → app/analytics/emotion_head.json (7 labels)
- moment head: bench/data/moments_tuning.json → app/analytics/moment_head.json
  (objection, escalation, resolution, other)

It prints each file's SHA-256: pin it in app/analytics/head.py `CHECKSUMS`.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.analytics.head import HERE, Head, features  # noqa: E402
from app.analytics.models import load_readers  # noqa: E402

DATA = ROOT / "bench" / "data"
STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5
STEPS = 3000
#: Out-of-fold precision a moment label must reach at its threshold (precision first, as the rules).
THRESHOLD_PRECISION = 0.95
THRESHOLD_GRID = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))


def fit(x, y, n_labels, strength):
    """Weights and biases of a softmax regression on standardised x (mean cross-entropy + strength·‖W‖²/2)."""
    n, d = x.shape
    onehot = np.eye(n_labels)[y]
    w, b = np.zeros((n_labels, d)), np.zeros(n_labels)
    w_prev, b_prev = w.copy(), b.copy()
    step = 1.0 / (0.5 * float(np.max(np.sum(x * x, axis=1))) + strength)
    for t in range(1, STEPS + 1):
        momentum = (t - 1) / (t + 2)
        vw, vb = w + momentum * (w - w_prev), b + momentum * (b - b_prev)
        logits = x @ vw.T + vb
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / n
        w_prev, b_prev = w, b
        w = vw - step * (grad.T @ x + strength * vw)
        b = vb - step * grad.sum(axis=0)
    return w, b


def standardised(x, mean, sd):
    return (x - mean) / sd


def train(x, y, labels, strength):
    """A Head fitted on raw features, standardisation folded into its weights."""
    mean, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    w, b = fit(standardised(x, mean, sd), y, len(labels), strength)
    return Head(labels, w / sd, b - (w / sd) @ mean)


def cross_validate(x, y, labels):
    """(best strength, {strength: accuracy}, out-of-fold probabilities at the best) over stratified folds."""
    rng = np.random.default_rng(20)
    fold = np.zeros(len(y), dtype=int)
    for label in range(len(labels)):
        where = np.flatnonzero(y == label)
        fold[rng.permutation(where)] = np.arange(len(where)) % FOLDS
    scores, held_out = {}, {}
    for strength in STRENGTHS:
        probs = np.zeros((len(y), len(labels)))
        for k in range(FOLDS):
            head = train(x[fold != k], y[fold != k], labels, strength)
            for i in np.flatnonzero(fold == k):
                probs[i] = [head.probabilities(x[i])[label] for label in labels]
        scores[strength] = round(float(np.mean(probs.argmax(axis=1) == y)), 3)
        held_out[strength] = probs
    best = max(scores, key=scores.get)
    return best, scores, held_out[best]


def thresholds(probs, y, labels, precision=THRESHOLD_PRECISION):
    """Per label but the last ("other"): the lowest probability whose out-of-fold precision reaches `precision`."""
    chosen = {}
    for index, label in enumerate(labels[:-1]):
        for t in THRESHOLD_GRID:
            said = probs[:, index] >= t
            if said.any() and np.mean(y[said] == index) >= precision:
                chosen[label] = t
                print(f"  {label}: threshold {t}, out-of-fold precision {np.mean(y[said] == index):.2f}, "
                      f"recall {np.sum(said & (y == index)) / np.sum(y == index):.2f}")
                break
        else:
            chosen[label] = 1.0
    return chosen


def build(name, path, labels, about, vader, encoder, with_thresholds=False):
    items = json.loads(path.read_text())["items"]
    x = np.stack([features(encoder.encode(i["text"]), vader.polarity_scores(i["text"]))
                  for i in items])
    y = np.array([labels.index(i["label"]) for i in items])
    strength, scores, probs = cross_validate(x, y, labels)
    head = train(x, y, labels, strength)
    head.about = f"{about} Fitted by bench/train_heads.py on {path.name} ({len(items)} items), L2 {strength}."
    if with_thresholds:
        head.thresholds = thresholds(probs, y, labels)
    text = head.to_json()
    (HERE / name).write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(f"{name}: cross-validated accuracy by L2 strength {scores}; chose {strength}; "
          f"thresholds {head.thresholds}; sha256 {digest}")
    return digest


def main():
    vader, encoder = load_readers()
    build("emotion_head.json", DATA / "emotion_tuning.json",
          ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"],
          "Seven-way text emotion over MiniLM embedding + VADER.", vader, encoder)
    build("moment_head.json", DATA / "moments_tuning.json",
          ["objection", "escalation", "resolution", "other"],
          "Objection, escalation, resolution or other, over MiniLM embedding + VADER; a label counts "
          "when its probability reaches its threshold.", vader, encoder, with_thresholds=True)


if __name__ == "__main__":
    main()
