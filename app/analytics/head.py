"""Small softmax classifiers over MiniLM sentence embeddings (plus a few VADER scores), loaded from committed JSON.

The emotion head reads the utterance's embedding and VADER's scores: a multinomial logistic
regression. The moment head reads the same plus the embedding of the text's stance skeleton
(`stance.py`) through one hidden layer of ReLU units first: with topics left out of its fit, the
hidden layer read objections, escalations and resolutions better than the linear head did
(bench/train_heads.py prints both).

The weights are fitted by `bench/train_heads.py` on the tuning sets only and committed beside
this module; each file's SHA-256 is pinned here and checked at load, so a changed or damaged
file fails loudly instead of silently changing every label.
"""
import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: SHA-256 of each committed head; `bench/train_heads.py` prints the new value when it refits one.
CHECKSUMS = {
    "emotion_head.json": "e69d900c8072fa29a580e5102f3d173d6cb7269f4d8adec4fc613836ae2edc68",
    "moment_head.json": "9b52061a4be39e058d1a6378b266ab39e4b6f6f2e89dd713e52fa25c0ec3318e",
}
#: The VADER scores appended to the embedding, in order.
VADER_KEYS = ("compound", "pos", "neg", "neu")


class HeadChecksumError(RuntimeError):
    """A committed head does not match its pinned checksum: a model-load failure, not an API error."""


def features(embedding, polarity, *more):
    """The input vector of a head: the unit-length embedding, VADER's scores of the same text, then
    any further embeddings (the moment head reads the stance skeleton's, `stance.py`)."""
    return np.concatenate([np.asarray(embedding, dtype=np.float64),
                           np.array([polarity[k] for k in VADER_KEYS], dtype=np.float64),
                           *(np.asarray(m, dtype=np.float64) for m in more)])


class Head:
    """A fitted softmax classifier: labels, weights (labels × inputs), biases, thresholds, and optionally a
    hidden ReLU layer (hidden weights: units × features) whose outputs are the inputs of the softmax."""

    def __init__(self, labels, weights, bias, about="", thresholds=None, hidden=None):
        self.labels = list(labels)
        self.thresholds = dict(thresholds or {})  # label: the probability at which it counts (moment head)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.hidden = None if hidden is None else tuple(np.asarray(h, dtype=np.float64) for h in hidden)
        self.about = about

    def probabilities(self, x):
        """{label: probability} for one feature vector; sums to 1."""
        if self.hidden is not None:
            x = np.maximum(self.hidden[0] @ x + self.hidden[1], 0.0)
        logits = self.weights @ x + self.bias
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return dict(zip(self.labels, p.tolist()))

    def to_json(self):
        """The committed form: rounded so a refit on the same data gives the same bytes."""
        data = {"about": self.about, "labels": self.labels, "thresholds": self.thresholds,
                "weights": np.round(self.weights, 6).tolist(), "bias": np.round(self.bias, 6).tolist()}
        if self.hidden is not None:
            data["hidden_weights"], data["hidden_bias"] = (np.round(h, 6).tolist() for h in self.hidden)
        return json.dumps(data, separators=(",", ":")) + "\n"


def load(name):
    """The head committed as `name` beside this module, after checking its SHA-256."""
    raw = (HERE / name).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CHECKSUMS[name]:
        raise HeadChecksumError(f"{name} has SHA-256 {digest}, expected {CHECKSUMS[name]}: refit it with "
                                "bench/train_heads.py and pin the printed checksum in app/analytics/head.py")
    data = json.loads(raw)
    hidden = (data["hidden_weights"], data["hidden_bias"]) if "hidden_weights" in data else None
    return Head(data["labels"], data["weights"], data["bias"], data["about"], data["thresholds"], hidden)
