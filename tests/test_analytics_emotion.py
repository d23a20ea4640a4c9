"""The emotion sets: the held-out part is frozen, and the classifier head is scored against it."""
import hashlib
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"
#: SHA-256 of bench/data/emotion_heldout.json as committed before any tuning; never update it to fit a change.
HELDOUT_SHA256 = "0c8253bb818d42e004f65c3b837d31805504782e515277098f22347b7bdbda37"
LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]


def test_heldout_emotion_set_is_frozen():
    """The held-out emotion set is byte for byte the one committed before tuning."""
    assert hashlib.sha256((DATA / "emotion_heldout.json").read_bytes()).hexdigest() == HELDOUT_SHA256


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
