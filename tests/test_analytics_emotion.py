"""The emotion sets: the held-out part is frozen, and the classifier head is scored against it."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from app.analytics import ConversationAnalytics, head, load_models
from app.pipeline.base import SessionContext
from app.speech.analysis import Utterance

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"
#: SHA-256 of bench/data/emotion_heldout.json as committed before any tuning; never update it to fit a change.
HELDOUT_SHA256 = "0c8253bb818d42e004f65c3b837d31805504782e515277098f22347b7bdbda37"
#: SHA-256 of bench/data/emotion_heldout_questions.json as committed before any tuning on questions.
HELDOUT_QUESTIONS_SHA256 = "03b4d03019c56f9e6d52e7dee24ad3a4265955e242316a7795da3ba1576a22f8"
LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]


@pytest.mark.parametrize("name, digest", [("emotion_heldout.json", HELDOUT_SHA256),
                                          ("emotion_heldout_questions.json", HELDOUT_QUESTIONS_SHA256)])
def test_heldout_emotion_sets_are_frozen(name, digest):
    """Each held-out emotion set is byte for byte the one committed before the tuning it checks."""
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest


def test_heldout_set_is_balanced_and_labelled_with_the_catalog():
    """22 items per catalog category, no duplicates."""
    items = json.loads((DATA / "emotion_heldout.json").read_text())["items"]
    assert sorted({i["label"] for i in items}) == LABELS
    assert all(sum(i["label"] == label for i in items) == 22 for label in LABELS)
    assert len({i["text"] for i in items}) == len(items)


#: SHA-256 of bench/data/moments_heldout.json as committed before the moment head was trained.
MOMENTS_HELDOUT_SHA256 = "4e7153682f5484d8f172bf2c4013d3211426366cd8dcd0eece1fa63ad1313270"


def test_heldout_moment_conversations_are_frozen():
    """The held-out moment conversations are byte for byte the ones committed before tuning."""
    assert hashlib.sha256((DATA / "moments_heldout.json").read_bytes()).hexdigest() == MOMENTS_HELDOUT_SHA256


@pytest.fixture(scope="module")
def models():
    return load_models()


def read(models, text):
    """The emotion event of `text` said alone, with no audio (so the words decide)."""
    analytics = ConversationAnalytics(SessionContext("s", "c"), models)
    return analytics.on_final(Utterance("utt_0001", "Speaker_0", 0.0, 2.0, text, 1.0, [], np.zeros(0, np.float32)))[0]


@pytest.mark.parametrize("text, label, sign", [
    ("The team is frustrated with the recording tools.", "anger", -1),
    ("I understand.", "neutral", 0),
    ("Thanks so much, the new dashboard is brilliant.", "joy", 1),
])
def test_demo_sentences_read_as_people_would(models, text, label, sign):
    """The bundled demo's sentences: frustration is anger, 'I understand' is neutral, praise is joy."""
    reading = read(models, text)
    assert reading.label == label
    valence = reading.scores["valence"]
    assert (valence < -0.25) if sign < 0 else (valence > 0.25) if sign > 0 else abs(valence) <= 0.25


def test_a_price_objection_reads_negative(models):
    """'The price is too high for us' is negative in valence, whatever its label."""
    assert read(models, "The price is too high for us.").scores["valence"] < -0.25


def test_a_changed_head_is_refused(tmp_path, monkeypatch):
    """A head file that does not match its pinned SHA-256 fails to load with a clear error."""
    original = (head.HERE / "emotion_head.json").read_text()
    monkeypatch.setattr(head, "HERE", tmp_path)
    (tmp_path / "emotion_head.json").write_text(original.replace("0.", "0.1", 1))
    with pytest.raises(head.HeadChecksumError, match="emotion_head.json has SHA-256"):
        head.load("emotion_head.json")
