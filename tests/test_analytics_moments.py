"""Moments in new wording: the fresh held-out conversations are frozen before the speech-act head is tuned."""
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from app.analytics import ConversationAnalytics, head, load_models
from app.analytics.moments import Judged, MomentRules
from app.analytics.stance import skeleton
from app.pipeline.base import SessionContext
from app.speech.analysis import FinalAnalysis, Utterance
from client.events import FinalTranscript

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"
#: SHA-256 of bench/data/moments_heldout_fresh.json as committed before the speech-act head existed.
FRESH_HELDOUT_SHA256 = "190edd3e2a806b158bd9336cdfa648a7d6e67232748380848466b51990db851e"
#: SHA-256 of bench/data/moments_heldout_fresh2.json as committed before the second speech-act head was tuned.
FRESH2_HELDOUT_SHA256 = "6c0c5451b5d6fb186b279b966771046f56276ce0652b07f95589a6658c0b026c"
#: SHA-256 of bench/data/moments_heldout_fresh3.json as committed before the head that reads a turn in its exchange was tuned.
FRESH3_HELDOUT_SHA256 = "425f855767469feae22d65300743f6c743209a649280e3d8f708d12630f4b6c0"


@pytest.mark.parametrize("name, digest", [("moments_heldout_fresh.json", FRESH_HELDOUT_SHA256),
                                           ("moments_heldout_fresh2.json", FRESH2_HELDOUT_SHA256),
                                           ("moments_heldout_fresh3.json", FRESH3_HELDOUT_SHA256)])
def test_fresh_heldout_moment_conversations_are_frozen(name, digest):
    """The fresh held-out conversations are byte for byte the ones committed before the tuning they judge."""
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", ["moments_heldout_fresh.json", "moments_heldout_fresh2.json",
                                  "moments_heldout_fresh3.json"])
def test_fresh_heldout_conversations_use_the_catalog(name):
    """Every labelled moment is a catalog category judged by meaning or phrase, every polarity one of three."""
    conversations = json.loads((DATA / name).read_text())["conversations"]
    turns = [t for c in conversations for t in c["turns"]]
    assert {m for t in turns for m in t["moments"]} <= {"question", "objection", "cta_commit", "escalation",
                                                         "resolution"}
    assert {t["polarity"] for t in turns} <= {"positive", "neutral", "negative"}
    assert sum("objection" in t["moments"] or "escalation" in t["moments"] or "resolution" in t["moments"]
               for t in turns) >= 25


@pytest.fixture(scope="module")
def models():
    return load_models()


def said(index, speaker, text):
    """A final of `text` alone (no audio: the words decide)."""
    return Utterance(f"utt_{index:04d}", speaker, 3.0 * index, 3.0 * index + 2.5, text, 1.0, [],
                     np.zeros(0, np.float32))


def test_a_last_sentence_left_unfinished_gets_its_moment_when_the_session_finishes(models):
    """The session's last final has no closing punctuation: finish() judges it and names that final."""
    analytics = ConversationAnalytics(SessionContext("s", "c"), models)
    analytics.on_final(said(1, "Speaker_0", "The yearly plan comes to twelve thousand."))
    events = analytics.on_final(said(2, "Speaker_1", "Honestly that is too expensive for a team of our size"))
    assert [e.name for e in events if e.name == "moment"] == []  # the sentence may go on in the next final
    moments = analytics.finish()
    assert [(m.category, m.utterance_ids, m.speaker) for m in moments] == [("objection", ["utt_0002"], "Speaker_1")]
    assert "too expensive" in moments[0].evidence
    assert analytics.finish() == []
    assert analytics.summary(final=True).moments_by_category.get("objection") == 1


def test_the_stance_skeleton_keeps_the_speech_act_and_blanks_the_topic(models):
    """Two objections on different topics share their skeleton's wording; the topic words are gone."""
    lexicon = models.vader.lexicon
    assert skeleton("Even so, the pallet rate is more than we pay our carrier.", lexicon) == \
        "even so the _ _ is more than we pay our _"
    assert skeleton("Even so, the licence fee is more than we pay our agency.", lexicon) == \
        "even so the _ _ is more than we pay our _"
    assert skeleton("12 345", lexicon) == "_"


def whole(speaker, uid, text, valence):
    return Judged(text, [said(int(uid[-4:]), speaker, text)], valence, arousal=0.0, interrupted=False)


def test_a_resolution_read_by_meaning_comes_from_the_speaker_whose_issue_is_open(models):
    """The other side's answer to an objection is not its resolution, however the head reads it."""
    rules = MomentRules(models.moment_head)
    sure = {"resolution": 0.99, "objection": 0.0, "escalation": 0.0, "other": 0.01}
    rules.detect(whole("Speaker_1", "utt_0001", "Honestly that is too expensive for us.", -0.4))
    answer = rules.detect(whole("Speaker_0", "utt_0002", "We can take ten percent off the first year.", 0.1), sure)
    accepted = rules.detect(whole("Speaker_1", "utt_0003", "Ten percent off, alright then.", 0.3), sure)
    assert answer == [] and [c for c, _, _ in accepted] == ["resolution"]


def test_the_closing_events_carry_the_unfinished_sentences_moment_before_the_summary(models):
    """Live sessions and files close through FinalAnalysis.closing: the pending moment, then the final summary."""
    analysis = FinalAnalysis(models, SessionContext("s", "c"))
    final = FinalTranscript("utt_0001", "Speaker_1", 0.0, 2.5, "Honestly that is too expensive for us", 1.0, [])
    assert [e.name for e in analysis.after(final, np.zeros(0, np.float32))] == ["emotion", "cognitive"]
    closing = analysis.closing()
    assert [e.name for e in closing] == ["moment", "summary_update"]
    assert closing[0].category == "objection" and closing[0].utterance_ids == ["utt_0001"]
    assert closing[1].moments_by_category == {"objection": 1}


def test_the_moments_read_the_words_valence_whatever_the_emotion_head_says(models):
    """A head that reads every text as joy moves each reading's valence up, and no moment: an objection, an
    escalation and its resolution are found, with the same confidences, as with the shipped head."""
    emotion_head = models.emotion_head
    joyful = head.Head(emotion_head.labels, np.zeros_like(emotion_head.weights),
                       [8.0 if label == "joy" else 0.0 for label in emotion_head.labels])
    call = ["Honestly, the price is too high for us.", "I could take a tenth off the first year.",
            "This is the third time your invoice has been wrong.", "I've corrected it and refunded the fee.",
            "Okay, that works for me."]

    def moments(emotion_head):
        analytics = ConversationAnalytics(SessionContext("s", "c"), dataclasses.replace(models, emotion_head=emotion_head))
        events = [e for i, text in enumerate(call) for e in analytics.on_final(said(i + 1, f"Speaker_{i % 2}", text))]
        return ([e.scores["valence"] for e in events if e.name == "emotion"],
                [(e.category, e.utterance_ids, e.confidence) for e in events if e.name == "moment"])

    shipped_valence, shipped = moments(emotion_head)
    joyful_valence, read_as_joy = moments(joyful)
    assert all(j > s for j, s in zip(joyful_valence, shipped_valence))
    assert {category for category, _, _ in shipped} >= {"objection", "escalation", "resolution"}
    assert read_as_joy == shipped


def test_the_moment_head_reads_through_its_hidden_layer(models, tmp_path, monkeypatch):
    """The committed moment head is a ReLU layer then a softmax: a round trip through its JSON keeps every
    probability, and each equals the two matrix products done by hand."""
    moment_head = models.moment_head
    assert moment_head.hidden is not None and moment_head.hidden[0].shape[0] == moment_head.weights.shape[1]
    x = np.random.default_rng(0).normal(size=moment_head.hidden[0].shape[1])
    logits = moment_head.weights @ np.maximum(moment_head.hidden[0] @ x + moment_head.hidden[1], 0) + moment_head.bias
    by_hand = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert np.allclose(list(moment_head.probabilities(x).values()), by_hand)
    monkeypatch.setattr(head, "HERE", tmp_path)
    (tmp_path / "moment_head.json").write_text(moment_head.to_json())
    monkeypatch.setitem(head.CHECKSUMS, "moment_head.json",
                        hashlib.sha256((tmp_path / "moment_head.json").read_bytes()).hexdigest())
    again = head.load("moment_head.json")
    assert again.thresholds == moment_head.thresholds
    assert np.allclose(list(again.probabilities(x).values()), by_hand, atol=1e-4)


def test_a_resolution_read_by_meaning_follows_an_issue_read_below_its_reporting_threshold(models):
    """An objection the head doubts is not reported, yet its speaker's acceptance of the answer is a resolution;
    the other side's is not."""
    rules = MomentRules(models.moment_head)
    doubted = {"objection": 0.6, "escalation": 0.0, "resolution": 0.0, "other": 0.4}
    sure = {"resolution": 0.99, "objection": 0.0, "escalation": 0.0, "other": 0.01}
    assert models.moment_head.thresholds["objection"] > 0.6
    assert rules.detect(whole("Speaker_1", "utt_0001", "Our old printer costs us nothing to run.", 0.0), doubted) == []
    assert rules.detect(whole("Speaker_0", "utt_0002", "We could halve the rental for the first year.", 0.1), sure) == []
    accepted = rules.detect(whole("Speaker_1", "utt_0003", "Half the rental for a year, fine.", 0.2), sure)
    assert [c for c, _, _ in accepted] == ["resolution"]
    assert rules.detect(whole("Speaker_1", "utt_0004", "Half the rental for a year, fine.", 0.2), sure) == []


def test_a_doubted_issue_gives_way_to_another_speakers_reported_one(models):
    """While the customer's escalation is reported open, the agent's own doubted turn does not let the agent's
    answer count as a resolution; the customer's acceptance does."""
    rules = MomentRules(models.moment_head)
    doubted = {"objection": 0.0, "escalation": 0.55, "resolution": 0.0, "other": 0.45}
    sure = {"resolution": 0.99, "objection": 0.0, "escalation": 0.0, "other": 0.01}
    assert [c for c, _, _ in rules.detect(whole("Speaker_1", "utt_0001", "This is unacceptable.", -0.6))] == \
        ["escalation"]
    rules.detect(whole("Speaker_0", "utt_0002", "That sounds awful, I'm sorry.", -0.2), doubted)
    assert rules.detect(whole("Speaker_0", "utt_0003", "The engineer comes tomorrow at nine.", 0.1), sure) == []
    accepted = rules.detect(whole("Speaker_1", "utt_0004", "Tomorrow at nine is fine.", 0.2), sure)
    assert [c for c, _, _ in accepted] == ["resolution"]


class _CountingEncoder:
    """The real encoder, counting the texts it embeds."""

    def __init__(self, encoder):
        self.encoder, self.texts = encoder, []

    def encode(self, text):
        self.texts.append(text)
        return self.encoder.encode(text)


def test_each_final_is_embedded_once_and_its_stance_skeleton_once(models):
    """The CPU budget counts two MiniLM passes per final that ends a sentence: the emotion head, the topics
    and the moment head share the text's embedding, the moment head adds its skeleton's."""
    counting = _CountingEncoder(models.encoder)
    analytics = ConversationAnalytics(SessionContext("s", "c"), dataclasses.replace(models, encoder=counting))
    offer = "We could take the trial down to a thousand for the one farm."
    analytics.on_final(said(1, "Speaker_0", offer))
    analytics.on_final(said(2, "Speaker_1", "A thousand for the trial. Go on then."))
    assert counting.texts.count(offer) == 1 and len(counting.texts) == 4
