"""Fits the classifier heads of app/analytics on the tuning sets only, and writes them beside the code.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/train_heads.py

(one BLAS thread: on the shared two-core machine that is several times faster.)

Each head is a multinomial logistic regression (numpy, L2-regularised, fitted by accelerated
gradient descent on standardised features; the standardisation is folded into the weights so
the product reads plain weights). Its input is the MiniLM embedding of the text plus VADER's
four scores (`app.analytics.head.features`); the moment head also reads the MiniLM embedding
of the text's stance skeleton (`app.analytics.stance`: topic words blanked). The L2 strength is chosen by 5-fold
cross-validation inside the tuning set; the held-out sets are never read here.

- emotion head: bench/data/emotion_tuning.json → app/analytics/emotion_head.json (7 labels)
- moment head: bench/data/moments_tuning.json + bench/data/speech_acts.json →
  app/analytics/moment_head.json (objection, escalation, resolution, other). Its folds leave
  whole topics out (each topic of speech_acts.json, and moments_tuning.json as one more), so
  the L2 strength and the thresholds are chosen for sentences on topics the fit never saw:
  the head must carry the speech act, not the topic, to new conversations.

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
from app.analytics.stance import skeleton  # noqa: E402

DATA = ROOT / "bench" / "data"
STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5
STEPS = 3000
#: Out-of-fold precision (topics left out) each moment label must reach at its threshold: the
#: issue's target, 0.85, for objections and escalations. A resolution read by meaning is believed
#: only from the speaker whose own objection or escalation is open, and only when that turn
#: neither objects nor escalates (moments.py); a sentence out of context, as here, meets none of
#: those gates, so its precision is asked less of: 0.7.
THRESHOLD_PRECISION = {"objection": 0.85, "escalation": 0.85, "resolution": 0.7}
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


def stratified_folds(y, n_labels):
    """A fold per item, each label spread evenly over the folds."""
    rng = np.random.default_rng(20)
    fold = np.zeros(len(y), dtype=int)
    for label in range(n_labels):
        where = np.flatnonzero(y == label)
        fold[rng.permutation(where)] = np.arange(len(where)) % FOLDS
    return fold


def topic_folds(topics):
    """A fold per item such that every topic falls in one fold: each fold's items are on topics the fit never saw."""
    names = sorted(set(topics), key=lambda t: (-topics.count(t), t))
    sizes = [0] * FOLDS
    fold_of = {}
    for name in names:  # the largest topics first, each into the fold with fewest items so far
        k = sizes.index(min(sizes))
        fold_of[name] = k
        sizes[k] += topics.count(name)
    return np.array([fold_of[t] for t in topics])


def cross_validate(x, y, labels, fold):
    """(best strength, {strength: accuracy}, out-of-fold probabilities at the best) over the given folds."""
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
    """Per label but the last ("other"): the lowest probability whose out-of-fold precision reaches the label's."""
    chosen = {}
    for index, label in enumerate(labels[:-1]):
        for t in THRESHOLD_GRID:
            said = probs[:, index] >= t
            if said.any() and np.mean(y[said] == index) >= precision[label]:
                chosen[label] = t
                print(f"  {label}: threshold {t}, out-of-fold precision {np.mean(y[said] == index):.2f}, "
                      f"recall {np.sum(said & (y == index)) / np.sum(y == index):.2f}")
                break
        else:
            chosen[label] = 1.0
    return chosen


def build(name, paths, labels, about, vader, encoder, with_thresholds=False, leave_topics_out=False,
          read_stance=False):
    """Fit one head on the items of `paths`; folds leave topics out when asked (each item's topic, or its file)."""
    items = []
    for path in paths:
        items += [dict(i, topic=i.get("topic", path.stem)) for i in json.loads(path.read_text())["items"]]
    x = np.stack([features(encoder.encode(i["text"]), vader.polarity_scores(i["text"]),
                           *([encoder.encode(skeleton(i["text"], vader.lexicon))] if read_stance else []))
                  for i in items])
    y = np.array([labels.index(i["label"]) for i in items])
    fold = topic_folds([i["topic"] for i in items]) if leave_topics_out else stratified_folds(y, len(labels))
    strength, scores, probs = cross_validate(x, y, labels, fold)
    head = train(x, y, labels, strength)
    files = " + ".join(path.name for path in paths)
    head.about = f"{about} Fitted by bench/train_heads.py on {files} ({len(items)} items), L2 {strength}."
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
    build("emotion_head.json", [DATA / "emotion_tuning.json"],
          ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"],
          "Seven-way text emotion over MiniLM embedding + VADER.", vader, encoder)
    build("moment_head.json", [DATA / "moments_tuning.json", DATA / "speech_acts.json"],
          ["objection", "escalation", "resolution", "other"],
          "Objection, escalation, resolution or other, over MiniLM embedding + VADER + the stance "
          "skeleton's MiniLM embedding; a label counts "
          "when its probability reaches its threshold (chosen with topics left out).", vader, encoder,
          with_thresholds=True, leave_topics_out=True, read_stance=True)


if __name__ == "__main__":
    main()
