"""Whisper (CTranslate2 on CPU, int8 by default) run one short window at a time, with word timings.

faster-whisper's `transcribe` pads every call to a 30 s window and keeps seeking after the
speech ends, which costs seconds per utterance on a 2-core CPU. Here one call is one
window of max(floor, audio + 1 s) (CTranslate2's encoder accepts fewer than 3,000 frames;
the caller picks the floor, 3 s by default), one decode (greedy, or a beam search when the
reading matters more than its cost) whose length is bounded by the audio's duration with
repeated 3-grams blocked (unbounded decoding on short windows hallucinates repetitions),
then one cross-attention alignment for word times. faster-whisper supplies the feature
extractor, tokenizer and alignment helpers so the numerics match the reference implementation.
"""
import functools
import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from ..audio import TARGET_RATE_HZ

log = logging.getLogger(__name__)

# Measured here on Piper speech: a 3 s floor costs 0.29 s of CPU per decode against 0.46 s
# for 10 s, at the same WER once decoding is bounded and 3-gram repeats are blocked.
MIN_WINDOW_S = 3
MAX_WINDOW_S = 30
# Read speech runs at about 3 words (4 tokens) a second; 8 a second plus a margin never cuts it.
TOKENS_PER_SECOND_BOUND = 8
TOKENS_MARGIN = 8
PROMPT_TOKENS_MAX = 96
# Whisper's own rule for "this window holds no speech".
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0
# A beam search can end the text early: an end of text right away scores a better mean
# log-probability than a few uncertain last words. When a beam reading stops this long before
# the voice does, the greedy reading of the same encoder output is decoded too, and kept if it
# reads more words (only then: a last word's end time is approximate, and on whole sentences
# the beam reading is the better one).
BEAM_STOPPED_SHORT_S = 0.3


@dataclass(frozen=True)
class WordHyp:
    """One recognised word, times in seconds from the start of the decoded audio."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Hypothesis:
    """A decode of one stretch of audio."""

    words: tuple
    avg_logprob: float
    no_speech_prob: float
    # The probability Whisper gave the full stop, question or exclamation mark that ends the
    # reading (None where it ends otherwise): at a pause it tells a sentence's end from a comma.
    end_probability: float = None

    @property
    def text(self):
        return "".join(word.text for word in self.words).strip()


class WhisperRecognizer:
    """One loaded Whisper model (a faster-whisper `WhisperModel`, see models.whisper_model);
    `recognize` is synchronous and meant for a worker process."""

    def __init__(self, whisper):
        self._whisper = whisper
        self._whisper.hf_tokenizer = restore_lost_merges(self._whisper.hf_tokenizer)
        self._tokenizers = {}
        self._suppress = None

    def recognize(self, audio, language="en", prompt="", prefix="", min_window_s=MIN_WINDOW_S,
                  beam_size=1, speech_end_s=None):
        """Words spoken in `audio` (16 kHz mono float32) after `prefix`.

        `prompt` is earlier text, for context only. `prefix` is text known to be spoken at the
        start of `audio` (already committed words, decoded again as acoustic context): the
        decoder is forced through it, it is aligned with the rest, and only the words after
        it are returned. `speech_end_s` (default: the audio's end) is where the voice stops,
        which tells a beam reading that ended early.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_suppressed_tokens

        duration_s = len(audio) / TARGET_RATE_HZ
        if duration_s < 0.1:
            return Hypothesis((), 0.0, 1.0)
        tokenizer = self._tokenizer(language)
        if self._suppress is None:
            self._suppress = list(get_suppressed_tokens(tokenizer, [-1]))
        window_s = min(MAX_WINDOW_S, max(min_window_s, math.ceil(duration_s + 1)))
        extractor = self._whisper.feature_extractor
        features = extractor(audio.astype(np.float32, copy=False), padding=0)
        features = pad_or_trim(features, window_s * self._whisper.frames_per_second)
        encoded = self._whisper.encode(features)
        previous = tokenizer.encode(" " + prompt.strip())[-PROMPT_TOKENS_MAX:] if prompt.strip() else []
        forced = tokenizer.encode(" " + prefix.strip()) if prefix.strip() else []
        sot = self._whisper.get_prompt(tokenizer, previous, without_timestamps=True)
        max_length = len(sot) + len(forced) + int(duration_s * TOKENS_PER_SECOND_BOUND) + TOKENS_MARGIN
        decode = functools.partial(self._decode, encoded, tokenizer, sot, forced, max_length, duration_s)
        hypothesis = decode(beam_size)
        if beam_size > 1 and _stopped_short(hypothesis, duration_s if speech_end_s is None else speech_end_s):
            greedy = decode(1)
            if len(greedy.words) > len(hypothesis.words):
                hypothesis = greedy
        return hypothesis

    def _decode(self, encoded, tokenizer, sot, forced, max_length, duration_s, beam_size):
        """One decode of an encoded window, forced through `forced`, and its word alignment."""
        from faster_whisper.transcribe import merge_punctuations

        result = self._whisper.model.generate(
            encoded, [sot + forced], beam_size=beam_size, max_length=max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=self._suppress,
            no_repeat_ngram_size=3)[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if tokens[:len(forced)] != forced:  # CTranslate2 returns the forced prefix with the rest
            tokens = forced + tokens
        avg_logprob = result.scores[0] / (len(tokens) + 1)
        if len(tokens) == len(forced) or (
                result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < NO_SPEECH_LOGPROB):
            return Hypothesis((), avg_logprob, result.no_speech_prob)
        num_frames = int(duration_s * self._whisper.frames_per_second)
        alignment = self._whisper.find_alignment(tokenizer, [tokens], encoded, num_frames)[0]
        # Skip the words that spell the forced prefix: they were committed before.
        skipped, consumed = 0, 0
        while skipped < len(alignment) and consumed < len(forced):
            consumed += len(alignment[skipped]["tokens"])
            skipped += 1
        alignment = alignment[skipped:]
        end_probability = _sentence_end_probability(alignment)
        merge_punctuations(alignment, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        words = tuple(
            WordHyp(w["word"], round(float(w["start"]), 3), round(min(float(w["end"]), duration_s), 3),
                    round(float(w["probability"]), 3))
            for w in alignment if w["word"].strip())
        return Hypothesis(join_split_words(words), avg_logprob, result.no_speech_prob, end_probability)

    def _tokenizer(self, language):
        from faster_whisper.tokenizer import Tokenizer
        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self._whisper.hf_tokenizer, self._whisper.model.is_multilingual,
                task="transcribe", language=language)
        return self._tokenizers[language]


def restore_lost_merges(hf_tokenizer):
    """`hf_tokenizer` with the byte-level BPE merges its vocabulary needs and its file lacks.

    The tokenizer.json that ships with the model has lost its first merge, "Ġ t" (most likely
    a converter took merges.txt's first line for a "#version" header), so " the" is encoded as
    " " + "the" and " today" as " " + "t" + "od" + "ay": tokens Whisper never emits, in every
    prompt and forced prefix. In byte-level BPE token 256 + k is made by merge k, which tells
    where a lost merge goes and what it joins.
    """
    from tokenizers import Tokenizer
    spec = json.loads(hf_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "BPE":
        return hf_tokenizer
    as_pairs = bool(model["merges"]) and not isinstance(model["merges"][0], str)
    merges = [tuple(m) if as_pairs else tuple(m.split(" ")) for m in model["merges"]]
    vocab = model["vocab"]
    formed = {a + b for a, b in merges}
    special = {t["content"] for t in spec.get("added_tokens", [])}
    lost = sorted((i, t) for t, i in vocab.items()
                  if i >= 256 and len(t) > 1 and t not in formed and t not in special)
    restored = []
    for token_id, token in lost:
        split = next(((token[:n], token[n:]) for n in range(1, len(token))
                      if vocab.get(token[:n], token_id) < token_id and vocab.get(token[n:], token_id) < token_id), None)
        if split is not None and token_id - 256 <= len(merges):
            merges.insert(token_id - 256, split)
            restored.append(" ".join(split))
    if not restored:
        return hf_tokenizer
    log.warning("the model's tokenizer lacks BPE merges %s: restored", restored)
    model["merges"] = [list(m) if as_pairs else " ".join(m) for m in merges]
    return Tokenizer.from_str(json.dumps(spec))


def _sentence_end_probability(alignment):
    """The probability of the alignment's last word if it is a sentence's closing mark (before
    punctuation is merged into the words: Whisper reads "." as a token of its own)."""
    last = next((w for w in reversed(alignment) if w["word"].strip()), None)
    if last is not None and set(last["word"].strip()) <= set(".?!"):
        return round(float(last["probability"]), 3)
    return None


def join_split_words(words):
    """`words` with each hyphenated or dotted word whole: "ill" + "-disposed" become
    "ill-disposed", "p" + ".m." become "p.m.".

    Whisper's alignment splits words on spaces and punctuation tokens, so the hyphen or dot and
    what follows it come out as a word of their own, which the live path would emit as a
    separate token ("ill -disposed", "p .m."), and could commit "ill" or "p" alone before the
    rest was heard. Only a dot before a letter joins: "11" + ".30" stays two words, as a
    reference writes 11:30 (joined, the bench counted one error more).
    """
    out = []
    for word in words:
        continues = (word.text.startswith("-") and word.text.strip("-")) or \
            (word.text.startswith(".") and word.text[1:2].isalpha())
        if out and continues:
            last = out[-1]
            out[-1] = WordHyp(last.text + word.text, last.start, word.end, min(last.probability, word.probability))
        else:
            out.append(word)
    return tuple(out)


def _stopped_short(hypothesis, speech_end_s):
    """A reading that ends well before the voice does, or is empty where Whisper hears speech."""
    if not hypothesis.words:
        return hypothesis.no_speech_prob <= NO_SPEECH_PROB
    return hypothesis.words[-1].end < speech_end_s - BEAM_STOPPED_SHORT_S
