"""The test-audio generator itself: voices, dialogues, containers and WER scoring."""
import av
import pytest
import soundfile

import speechgen

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def test_speak_writes_16k_mono_wav_with_reference_text(tmp_path):
    """Piper speech lands as 16 kHz mono PCM with its text beside it."""
    path = speechgen.speak(SENTENCE, tmp_path / "fox.wav")
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 2.0 < info.duration < 6.0
    assert path.with_suffix(".txt").read_text().strip() == SENTENCE


def test_sox_effects_change_the_audio():
    """Tempo shortens the speech; the cache keys on every effect."""
    plain = speechgen.speak(SENTENCE)
    faster = speechgen.speak(SENTENCE, tempo=1.25, pitch_cents=300)
    assert plain != faster
    assert soundfile.info(faster).duration < soundfile.info(plain).duration * 0.9


def test_dialogue_spans_follow_the_turns():
    """Spans are ordered, separated by the gap, and end at the file's end."""
    path, spans = speechgen.dialogue(
        [("A", "Good morning, I would like to ask about my order."),
         ("B", "Of course, can you give me your name please?")],
        voices={"A": {"voice": "joe"}, "B": {"voice": "espeak"}}, gap_s=0.5)
    assert [s.speaker for s in spans] == ["A", "B"]
    assert spans[1].start_s - spans[0].end_s == pytest.approx(0.5, abs=1e-3)
    assert spans[-1].end_s == pytest.approx(soundfile.info(path).duration, abs=1e-3)


def test_only_piper_dialogues_depend_on_the_take(monkeypatch):
    """espeak-ng speaks one way, so its dialogues are cached once whatever SPEECHGEN_TAKE says."""
    turns = [("A", "Of course, can you give me your name please?")]
    made = {}
    for take in (0, 7):
        monkeypatch.setattr(speechgen, "DEFAULT_TAKE", take)
        made[take] = speechgen.dialogue(turns, voices={"A": {"voice": "espeak"}})[0]
    assert made[0] == made[7]


@pytest.mark.parametrize("fmt", sorted(speechgen.FORMATS))
def test_encode_keeps_the_duration(fmt):
    """Each container decodes back to the same length of audio (codec padding aside)."""
    wav = speechgen.speak(SENTENCE)
    with av.open(str(speechgen.encode(wav, fmt))) as container:
        stream = container.streams.audio[0]
        seconds = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert seconds == pytest.approx(soundfile.info(wav).duration, abs=0.12)


def test_wer_normalises_case_punctuation_and_spelling():
    """Case, punctuation, number and contraction spellings do not count; a wrong word does."""
    assert speechgen.wer("Hello, World!", "hello world") == 0.0
    assert speechgen.wer("Costs went down by eight percent.", "costs went down by 8%") == 0.0
    assert speechgen.wer("I am sure it is the colour.", "I'm sure it's the color") == 0.0
    assert speechgen.wer("it is a dog", "it's a cat") == pytest.approx(1 / 4)
    assert speechgen.wer("one two", "") == 1.0


def test_split_chunks_covers_everything():
    """Chunks cycle through the sizes and join back to the input."""
    chunks = speechgen.split_chunks(bytes(range(10)), [3, 1])
    assert [len(c) for c in chunks] == [3, 1, 3, 1, 2]
    assert b"".join(chunks) == bytes(range(10))
