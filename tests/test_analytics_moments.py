"""Moments in new wording: the fresh held-out conversations are frozen before the speech-act head is tuned."""
import hashlib
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"
#: SHA-256 of bench/data/moments_heldout_fresh.json as committed before the speech-act head existed.
FRESH_HELDOUT_SHA256 = "190edd3e2a806b158bd9336cdfa648a7d6e67232748380848466b51990db851e"


def test_fresh_heldout_moment_conversations_are_frozen():
    """The fresh held-out conversations are byte for byte the ones committed before any tuning."""
    assert hashlib.sha256((DATA / "moments_heldout_fresh.json").read_bytes()).hexdigest() == FRESH_HELDOUT_SHA256


def test_fresh_heldout_conversations_use_the_catalog():
    """Every labelled moment is a catalog category judged by meaning or phrase, every polarity one of three."""
    conversations = json.loads((DATA / "moments_heldout_fresh.json").read_text())["conversations"]
    turns = [t for c in conversations for t in c["turns"]]
    assert {m for t in turns for m in t["moments"]} <= {"question", "objection", "cta_commit", "escalation",
                                                         "resolution"}
    assert {t["polarity"] for t in turns} <= {"positive", "neutral", "negative"}
    assert sum("objection" in t["moments"] or "escalation" in t["moments"] or "resolution" in t["moments"]
               for t in turns) >= 25
