"""Unit tests of the analysers on text, word timings and synthetic signals with known values."""
import math

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from app.analytics import emotion, lexical, prosody, scores, summary
from app.analytics.baseline import Norm
from app.analytics.cognitive import questions
from app.analytics.moments import Judged, MomentRules, TurnText
from app.analytics.states import StateTracker, classify
from app.audio import TARGET_RATE_HZ as RATE
from app.speech.analysis import Utterance
from app.timefmt import mmss
from client.events import Cognitive, Emotion, Word


@pytest.fixture(scope="module")
def vader():
    return SentimentIntensityAnalyzer()


def utterance(text, t_start=0.0, speaker="Speaker_0", uid="utt_0001", words=None, audio=None):
    """An Utterance with one word a third of a second long every 0.4 s unless `words` is given."""
    if words is None:
        words = [Word(w, t_start + 0.4 * i, t_start + 0.4 * i + 0.33, 0.9) for i, w in enumerate(text.split())]
    t_end = words[-1].end if words else t_start + 1.0
    if audio is None:
        audio = np.zeros(int((t_end - t_start) * RATE), np.float32)
    return Utterance(uid, speaker, t_start, t_end, text, 0.9, words, audio)


def feeling(valence, arousal=0.0, dominance=0.0, uid="utt_0001", speaker="Speaker_0"):
    return Emotion(utterance_id=uid, speaker=speaker, emotion={}, label="neutral",
                   scores={"valence": valence, "arousal": arousal, "dominance": dominance}, confidence=1.0)


def judged(text, valence, uid="utt_0001"):
    """One final's whole text as the moment rules read it."""
    return Judged(text, [utterance(text, uid=uid)], valence, arousal=0.0, interrupted=False)


def test_syllables_count_vowel_groups():
    """Syllables are vowel groups, silent final e dropped, at least one per word."""
    assert [prosody.syllables(w) for w in ("budget", "make", "table", "rhythm", "I", "conversation")] == [2, 1, 2, 1, 1, 4]


def test_pauses_and_rate_come_from_word_timings():
    """A 0.6 s gap is one pause; rate is syllables over speaking time with pauses removed."""
    words = [Word("hello", 0.0, 0.4, 1.0), Word("there", 0.4, 0.8, 1.0), Word("friend", 1.4, 1.8, 1.0)]
    measured = prosody.measure(utterance("hello there friend", words=words))
    assert (measured.pauses, measured.pause_total_s, measured.syllables) == (1, pytest.approx(0.6), 4)
    assert measured.speech_rate_syl_s == pytest.approx(4 / 1.2)


def test_pitch_and_loudness_of_a_known_tone():
    """A 200 Hz tone at amplitude 0.1 reads as 200 Hz, a flat range and -23 dBFS."""
    t = np.arange(RATE) / RATE
    audio = (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    measured = prosody.measure(utterance("a tone", audio=audio))
    assert measured.pitch_median_hz == pytest.approx(200, abs=1)
    assert measured.pitch_range_st == pytest.approx(0, abs=0.1)
    assert measured.loudness_db == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.1)


def test_silence_has_no_pitch_or_loudness():
    """Digital silence gives None, not a made-up number."""
    measured = prosody.measure(utterance("nothing here"))
    assert (measured.pitch_median_hz, measured.loudness_db, measured.voiced_ratio) == (None, None, None)


def test_norm_uses_prior_then_the_speaker():
    """Before data the prior sets z; the speaker's own values take over as they arrive."""
    norm = Norm(prior_mean=-24.0, prior_sd=4.0)
    assert norm.z(-20.0) == pytest.approx(3.0 * math.tanh(1.0 / 3.0))
    for value in (-10.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0):
        norm.add(value)
    assert norm.mean_sd()[0] == pytest.approx((2 * -24.0 + 8 * -10.0) / 10)
    assert Norm(prior_mean=None, prior_sd=2.0).z(5.0) == 0.0


def test_z_stays_bounded_and_keeps_the_order_of_far_values():
    """A cue far off the norm saturates, but a value further off still reads further off."""
    norm = Norm(prior_mean=-24.0, prior_sd=4.0)
    far, farther = norm.z(-60.0), norm.z(-64.0)
    assert -3.0 < farther < far < -2.9


def test_voice_moves_the_text_distribution_along_the_arousal_axis():
    """A calm voice leaves the words' reading alone; a lively one favours anger over sadness; sums stay 1."""
    text = {label: 1 / 7 for label in emotion.LABELS}
    assert emotion.fuse(text, 0.0, 0.5) == pytest.approx(text, abs=1e-3)
    lively, flat = emotion.fuse(text, 0.8, 0.5), emotion.fuse(text, -0.8, 0.5)
    for probs in (lively, flat):
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert lively["anger"] > lively["neutral"] > lively["sadness"]
    assert flat["sadness"] > flat["neutral"] > flat["anger"]
    assert emotion.fuse(emotion.NO_WORDS, 0.0, 0.5)["neutral"] == pytest.approx(1.0, abs=1e-3)


def test_vader_misses_complaints_the_lexicon_catches(vader):
    """A complaint with no negative word still reads negative, with the phrase as evidence."""
    text = "This is the third time I've called about this, and nobody has fixed it."
    read = lexical.read(text, vader)
    assert read.vader == 0.0
    assert read.valence == pytest.approx(2 * lexical.COMPLAINT_VALENCE)
    assert read.complaints == ["third time", "nobody has fixed"]


def test_questions_need_a_question_mark_or_an_interrogative_opening():
    """Statements are not questions; inverted auxiliaries are."""
    assert questions("We ship on Friday. Can you confirm the address?") == ["Can you confirm the address?"]
    assert questions("How about that") == ["How about that"]
    assert questions("I will call you tomorrow.") == []
    assert questions("Could we start with one senior hire and a contractor.") == [
        "Could we start with one senior hire and a contractor."]
    assert questions("What I mean is the budget.") == []


@pytest.mark.parametrize("text, valence, expected", [
    ("The price is too expensive for a team our size.", -0.3, ["objection"]),
    ("Are you worried about the price at all?", 0.0, ["question"]),
    ("I'll send you the contract this afternoon.", 0.0, ["cta_commit"]),
    ("We'll see how it goes next quarter.", 0.0, []),
    ("Let's get started.", 0.0, []),
    ("This is unacceptable, I want to speak to a manager.", -0.6, ["escalation"]),
    ("That makes sense.", 0.3, []),
    ("Great, it's working now.", 0.6, ["resolution"]),
    ("Right?", 0.0, []),
])
def test_moment_rules_on_single_utterances(text, valence, expected):
    """Each category fires on its own phrasing and not on near misses."""
    found = MomentRules().detect(judged(text, valence))
    assert [category for category, _, _ in found] == expected


def test_acceptance_resolves_only_an_open_objection():
    """'That makes sense' resolves an objection once; a second time there is nothing open."""
    rules = MomentRules()
    rules.detect(judged("Honestly that is too expensive for us.", -0.4))
    first = rules.detect(judged("Okay, that makes sense.", 0.3, uid="utt_0002"))
    second = rules.detect(judged("Okay, that makes sense.", 0.3, uid="utt_0003"))
    assert [c for c, _, _ in first] == ["resolution"] and second == []


@pytest.mark.parametrize("reply", ["Okay, that helps a lot. Thank you.", "Okay, that helped a lot. Thank you."])
def test_acceptance_resolves_an_open_escalation(reply):
    """Thanks for the help after an escalation resolves it, in either tense (Whisper hears both)."""
    rules = MomentRules()
    rules.detect(judged("This is the third time I've called about this.", -0.5))
    found = rules.detect(judged(reply, 0.4, uid="utt_0002"))
    assert [c for c, _, _ in found] == ["resolution"]


def test_evidence_is_the_triggering_sentence():
    """The moment's evidence is the sentence with the matched words, not the whole turn."""
    found = MomentRules().detect(judged("Thanks for the demo. My main concern is the migration.", -0.3))
    assert found == [("objection", pytest.approx(0.81), "My main concern is the migration.")]


def test_a_sentence_cut_across_finals_is_judged_whole():
    """An early-committed fragment waits for the rest of its sentence; the moment spans both finals."""
    turn = TurnText()
    first = utterance("Could you send me a", uid="utt_0001")
    rest = utterance("proposal by Friday? Thanks.", uid="utt_0002", t_start=2.0)
    assert turn.take(first, 0.0, 0.0, False) == (None, None)
    whole, earlier = turn.take(rest, 0.2, 0.0, False)
    assert earlier is None and whole.text == "Could you send me a proposal by Friday? Thanks."
    assert [u.utterance_id for u in whole.utterances] == ["utt_0001", "utt_0002"]
    assert whole.valence == pytest.approx(0.1)
    sentence = "Could you send me a proposal by Friday?"
    assert MomentRules().detect(whole) == [("question", 0.9, sentence), ("cta_commit", 0.8, sentence)]


def test_an_unfinished_sentence_is_judged_when_the_other_speaker_talks():
    """A fragment left open is judged alone once someone else speaks, and nothing is judged twice."""
    turn = TurnText()
    turn.take(utterance("Honestly that is too expensive for", uid="utt_0001"), -0.4, 0.0, False)
    own, earlier = turn.take(utterance("I see.", uid="utt_0002", speaker="Speaker_1"), 0.0, 0.0, False)
    assert earlier.text == "Honestly that is too expensive for" and own.text == "I see."
    assert turn.flush() is None


def test_states_need_two_utterances_to_switch():
    """One negative sentence does not flip a calm speaker; a second one does, naming the drivers."""
    tracker = StateTracker()

    def step(i, valence, arousal):
        u = utterance("words", uid=f"utt_{i:04d}", t_start=float(i))
        mind = Cognitive(utterance_id=u.utterance_id, speaker=u.speaker, engagement=0.5, focus=0.5, cognitive_load=0.3)
        return tracker.update(u, feeling(valence, arousal, uid=u.utterance_id), mind)

    assert step(1, 0.0, 0.0) is None
    assert step(2, -0.5, 0.4) is None
    change = step(3, -0.5, 0.4)
    assert (change.from_state["label"], change.to_state["label"]) == ("calm", "frustrated")
    assert change.evidence_utterance_ids == ["utt_0002", "utt_0003"]
    assert [d["cue"] for d in change.drivers] == ["valence", "arousal"]


def test_classify_states():
    """Each documented region maps to its state."""
    base = {"valence": 0.0, "arousal": 0.0, "dominance": 0.0, "engagement": 0.5}
    assert classify(base)[0] == "calm"
    assert classify(dict(base, valence=-0.5, arousal=0.3))[0] == "frustrated"
    assert classify(dict(base, valence=-0.3, dominance=-0.3))[0] == "anxious"
    assert classify(dict(base, valence=-0.4, arousal=-0.2))[0] == "dissatisfied"
    assert classify(dict(base, valence=0.5))[0] == "positive"
    assert classify(dict(base, engagement=0.2))[0] == "disengaged"
    assert classify(dict(base, engagement=0.8))[0] == "engaged"


def test_mmss_and_key_phrases():
    """Times print as mm:ss; a phrase said in two utterances is key, a one-off is not."""
    from app.analytics.conversation import Record
    rows = [Record(f"u{i}", "Speaker_0", i, i + 1, text, 5, 0.0, 0.0, "neutral", 0.5, 0.3, False)
            for i, text in enumerate(["The migration plan is ready.", "Send the migration plan today.",
                                      "Pricing is fine."])]
    assert mmss(125.9) == "02:05"
    assert summary.key_phrases(rows) == ["migration plan"]


def test_empty_and_tiny_utterances_still_get_emotion_and_cognitive():
    """No words, no audio: two events with neutral readings, no crash, no made-up moments."""
    from app.analytics import ConversationAnalytics, load_models
    from app.pipeline.base import SessionContext
    analytics = ConversationAnalytics(SessionContext("s", "c"), load_models())
    empty = Utterance("utt_0001", "Speaker_0", 0.0, 0.01, "", 0.0, [], np.zeros(0, np.float32))
    events = analytics.on_final(empty)
    assert [e.name for e in events] == ["emotion", "cognitive"]
    assert events[0].label == "neutral" and events[1].signals["words"] == 0
    assert analytics.summary(final=False).is_final is False


def test_text_scores_count_their_markers(vader):
    """A dated promise is a high commitment; hedged talk is low conviction; each score names its markers."""
    promise = scores.read("I will definitely send you the signed contract by Friday, I promise.", vader)
    assert (promise.commitment, promise.commitment_level) == (1.0, "high")
    assert promise.markers["time_anchors"] == ["by Friday"] and "i promise" in promise.markers["commitments"]
    assert promise.conviction_level == "high"
    hedged = scores.read("Maybe we could look at it at some point, I guess.", vader)
    assert (hedged.commitment, hedged.conviction_level) == (0.0, "low")
    assert hedged.markers["hedges"] == ["maybe", "i guess"]
    excited = scores.read("This is absolutely amazing, I love it!", vader)
    assert excited.passion_level == "high" and excited.polarity_label == "positive"
    plain = scores.read("The meeting is on Tuesday.", vader)
    assert (plain.subjectivity, plain.passion, plain.polarity_label) == (0.0, 0.0, "neutral")
    assert scores.read("The price is too high for us.", vader).polarity_label == "negative"
    assert scores.read("", vader).to_dict()["conviction"] == 0.0


def test_summary_names_the_turning_points_and_how_an_objection_was_resolved():
    """The overview says where the tone fell and which objection was resolved by whose answer."""
    from app.analytics.conversation import Record
    from app.pipeline.base import SessionContext
    from client.events import Moment
    lines = [("Speaker_0", "Thanks for joining, how is the quarter going?", 0.4),
             ("Speaker_1", "Busy but good, thanks.", 0.4),
             ("Speaker_0", "Here is the proposal for the annual plan.", 0.1),
             ("Speaker_1", "Honestly that is far too expensive for us.", -0.5),
             ("Speaker_0", "We can start with the monthly plan at half the price.", 0.0),
             ("Speaker_1", "Okay, that works for us.", 0.4)]
    records = [Record(f"utt_{i:04d}", who, 2.0 * i, 2.0 * i + 1.5, text, 6, v, 0.0, "neutral", 0.5, 0.3, False)
               for i, (who, text, v) in enumerate(lines, 1)]

    def moment(n, category, i, evidence):
        return Moment(f"m_{n:04d}", category, 0.8, lines[i - 1][0], int(2000 * i), int(2000 * i + 1500),
                      [f"utt_{i:04d}"], evidence)

    moments = [moment(1, "objection", 4, "Honestly that is far too expensive for us."),
               moment(2, "resolution", 6, "Okay, that works for us.")]
    result = summary.write(SessionContext("s", "c"), records, moments, [], final=True)
    assert "the tone fell at [00:08] when Speaker_1 said \"Honestly that is far too expensive for us.\"" in result.overview
    assert ("Speaker_1's objection at [00:08] (\"Honestly that is far too expensive for us.\") resolved at [00:12] "
            "after Speaker_0 said \"We can start with the monthly plan at half the price.\"") in result.overview
    assert any(line.startswith("The objection at [00:08] was resolved by Speaker_0's answer")
               for line in result.what_went_well)


def test_summary_quotes_what_was_said_not_how_a_moment_was_read():
    """A moment read by meaning ends its evidence with the head's reading; the summary quotes the words of its
    finals (a sentence cut across two of them, whole), and a phrase's evidence (its sentence) as it is."""
    from app.analytics.conversation import Record
    from app.pipeline.base import SessionContext
    from client.events import Moment
    lines = [("Speaker_1", "Honestly, it has been slow. The team is frustrated", -0.3),
             ("Speaker_1", "with the reporting tools.", -0.3),
             ("Speaker_0", "Is the rollout on track otherwise?", 0.0)]
    records = [Record(f"utt_{i:04d}", who, 2.0 * i, 2.0 * i + 1.5, text, 6, v, 0.0, "neutral", 0.5, 0.3, False)
               for i, (who, text, v) in enumerate(lines, 1)]
    moments = [Moment("m_0001", "objection", 0.96, "Speaker_1", 2000, 5500, ["utt_0001", "utt_0002"],
                      "Honestly, it has been slow. The team is frustrated with the reporting tools. "
                      "(read as an objection, p=0.96)"),
               Moment("m_0002", "question", 0.9, "Speaker_0", 6000, 7500, ["utt_0003"],
                      "Is the rollout on track otherwise?")]
    result = summary.write(SessionContext("s", "c"), records, moments, [], final=True)
    quoted = "\"Honestly, it has been slow. The team is frustrated with the reporting tools.\""
    assert result.key_insights == ["[00:02] Speaker_1 objected: " + quoted,
                                   "[00:06] Speaker_0 asked: \"Is the rollout on track otherwise?\""]
    assert result.recommendations[0] == "Follow up on the unresolved objection at [00:02]: " + quoted
    assert not any("read as" in line for line in [result.overview, *result.key_insights, *result.recommendations,
                                                   *result.what_went_wrong])


def test_a_cut_sentence_gets_its_moments_after_the_final_that_completes_it():
    """Live order holds: each final gets emotion and cognitive; the moments follow the completing final."""
    from app.analytics import ConversationAnalytics, load_models
    from app.pipeline.base import SessionContext
    analytics = ConversationAnalytics(SessionContext("s", "c"), load_models())
    first = analytics.on_final(utterance("Could you send me a", uid="utt_0001"))
    second = analytics.on_final(utterance("proposal by Friday?", uid="utt_0002", t_start=2.0))
    assert [e.name for e in first] == ["emotion", "cognitive"]
    assert [e.name for e in second[:2]] == ["emotion", "cognitive"]
    moments = [e for e in second if e.name == "moment"]
    assert [m.category for m in moments] == ["question", "cta_commit"]
    assert all(m.utterance_ids == ["utt_0001", "utt_0002"] and m.start_ms == 0 for m in moments)
    assert moments[0].evidence == "Could you send me a proposal by Friday?"
