"""Checkpoints load only what a session's state is made of: a pickle written into the store by
anyone else cannot run a command through them (app/speech/checkpoint.py)."""
import base64
import pickle
import zlib
from collections import Counter, defaultdict

import numpy as np
import pytest

from app.analytics.baseline import speaker_norms
from app.analytics.moments import TurnText
from app.speech import checkpoint
from client.events import Moment


def stored(raw):
    """A checkpoint as the store keeps it, around the pickle bytes `raw`."""
    return {"samples": 0, "state": base64.b64encode(zlib.compress(raw)).decode("ascii")}


def test_a_state_of_harken_classes_numpy_and_containers_comes_back_whole():
    norms = defaultdict(speaker_norms)
    norms["Speaker_0"]["loudness_db"].add(-21.5)
    state = {"turn": TurnText(speaker="Speaker_1", text="Could you send me a"), "norms": norms,
             "labels": defaultdict(Counter, {"Speaker_0": Counter(joy=2)}), "print": np.arange(4, dtype=np.float32),
             "scalar": np.float64(0.25),
             "moment": Moment(moment_id="mom_0001", category="objection", confidence=0.8, speaker="Speaker_1",
                              start_ms=0, end_ms=1000, utterance_ids=["utt_0001"], evidence="too much")}
    loaded = checkpoint.load(checkpoint.dump(16000, state, models=None), models=None)
    assert loaded["turn"] == state["turn"] and loaded["moment"] == state["moment"]
    assert loaded["norms"]["Speaker_0"]["loudness_db"].n == 1 and loaded["labels"]["Speaker_0"]["joy"] == 2
    assert loaded["print"].dtype == np.float32 and loaded["print"].tolist() == [0, 1, 2, 3]
    assert loaded["scalar"] == 0.25


class _Gadget:
    """What an attacker's pickle does: call a function of its choice when loaded."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("raw", [
    pickle.dumps(_Gadget(__import__("os").system, "touch {marker}")),
    pickle.dumps(_Gadget(eval, "open({marker!r}, 'w')")),
    pickle.dumps(_Gadget(__import__("subprocess").call, ["touch", "{marker}"])),
    b"capp.speech.pool\nsubprocess\n.",  # a module an allowed module imports
    b"capp.speech.pool\nPath\n.",  # a class an allowed module imports, not its own
    b"capp.speech.pool\nworker_environment\n.",  # a function of an allowed module
    b"cbuiltins\ngetattr\n.",
], ids=["os.system", "eval", "subprocess", "imported module", "imported class", "function", "getattr"])
def test_a_checkpoint_naming_anything_else_is_refused_before_it_runs(raw, tmp_path):
    marker = tmp_path / "ran"
    raw = raw.replace(b"{marker}", str(marker).encode())
    with pytest.raises(checkpoint.CheckpointError, match="may not name"):
        checkpoint.load(stored(raw), models=None)
    assert not marker.exists()
