"""The real human speech of bench/data/real: complete, within its size budget, and its held-out part frozen.

Issue 16 asks for at least 15 minutes of real speech, read and conversational, about 20 MB
at most, licence and source of every recording noted, and a held-out third that no tuning
ever looks at. These checks read files only (no model).
"""
import hashlib
import json
from pathlib import Path

import soundfile

REAL = Path(__file__).resolve().parent.parent / "bench" / "data" / "real"
#: Held-out ids and the digest of their audio and reference text (see `heldout_digest`), as
#: committed before any tuning looked at them; never update them to fit a change. The first
#: set is the one issue 16 started from, the second the material added to it later.
FROZEN_HELDOUT = [
    (["1089-134691-0000", "1089-134691-0001", "LJ001-0023", "LJ001-0024", "LJ001-0025", "LJ001-0026",
      "LJ001-0027", "LJ001-0028", "LJ001-0029", "LJ001-0030", "LJ001-0031", "LJ001-0032", "jfk"],
     "e414d1a12fef534d9dd367880d411af8be4542e883d68557b945fb269d75a13c"),
    (["1221-135766-0001", "1221-135766-0002", "ami-ES2011a-40s-46s", "mfa-cold-corpus3",
      "rosehill-v1-07", "rosehill-v1-08", "rosehill-v1-09", "rosehill-v2-07", "rosehill-v2-08",
      "rosehill-v2-09", "sonnet-003"],
     "01521089e7f77c2475f0c07d30545cd8f6fadc08c92f1d8e9b6b217405af8ff5"),
]
MAX_BYTES = 20 * 1024 * 1024


def utterances():
    return json.loads((REAL / "manifest.json").read_text())["utterances"]


def heldout_digest(entries):
    """SHA-256 over the entries (sorted by id): each id with the SHA-256 of its audio and of its text."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e["id"]):
        for key in ("audio", "text"):
            digest.update(entry["id"].encode() + b"\0" + key.encode() + b"\0"
                          + hashlib.sha256((REAL / entry[key]).read_bytes()).digest())
    return digest.hexdigest()


def test_heldout_recordings_are_frozen():
    """Every frozen held-out id is still held out, with the same audio and reference as committed."""
    by_id = {e["id"]: e for e in utterances()}
    for ids, digest in FROZEN_HELDOUT:
        assert all(by_id[i]["split"] == "heldout" for i in ids), ids
        assert heldout_digest([by_id[i] for i in ids]) == digest, ids
    frozen = {i for ids, _ in FROZEN_HELDOUT for i in ids}
    assert {i for i, e in by_id.items() if e["split"] == "heldout"} == frozen


def test_every_recording_is_16_khz_mono_with_a_reference_source_and_licence():
    """The manifest's entries point at real files, say how long they are, and name kind, source and licence."""
    manifest = json.loads((REAL / "manifest.json").read_text())
    for entry in manifest["utterances"]:
        info = soundfile.info(REAL / entry["audio"])
        assert (info.samplerate, info.channels) == (16000, 1), entry["id"]
        assert abs(info.frames / info.samplerate - entry["seconds"]) < 0.02, entry["id"]
        assert (REAL / entry["text"]).read_text().strip(), entry["id"]
        assert entry["kind"] in ("read", "conversational") and entry["split"] in ("tuning", "heldout")
        source = manifest["sources"][entry["set"]]
        assert source["licence"] and source["origin"] and source["kind"] == entry["kind"], entry["id"]


def test_the_set_is_big_enough_and_small_enough():
    """At least 15 minutes of real speech, both kinds in both splits, held out about a third, under ~20 MB."""
    entries = utterances()
    seconds = {(kind, split): sum(e["seconds"] for e in entries if (e["kind"], e["split"]) == (kind, split))
               for kind in ("read", "conversational") for split in ("tuning", "heldout")}
    assert sum(seconds.values()) >= 15 * 60 and all(seconds.values()), seconds
    heldout = sum(v for (_, split), v in seconds.items() if split == "heldout")
    assert 0.25 <= heldout / sum(seconds.values()) <= 0.4, seconds
    assert sum(p.stat().st_size for p in REAL.rglob("*") if p.is_file()) <= MAX_BYTES
