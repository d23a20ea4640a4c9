"""Small operations on lists of recognised words (`client.events.Word`, session seconds).

Pure functions, shared by the streaming recognizer's parts: comparing two readings, keeping
the words a decode actually heard, and spelling words out.
"""
import re

from client.events import Word

# Words Whisper aligns to less than this, this many in a row, were written with no audio behind
# them: the decoder looping (a sentence read again and again, each time worded a little
# differently so that the blocked 3-gram repeats do not stop it), not a person speaking.
_INSTANT_WORD_S = 0.04
_INSTANT_RUN = 3


def norm(text):
    """A word as compared between readings: lower case, letters, digits and apostrophes only."""
    return re.sub(r"[^\w']+", "", text.lower())


def join(words):
    return " ".join(w.word for w in words).strip()


def agreement(previous, current):
    """The longest common prefix of two hypotheses, compared word by word after normalising
    (LocalAgreement-2: what two consecutive readings agree on is stable)."""
    agreed = []
    for a, b in zip(previous, current):
        if norm(a.word) != norm(b.word):
            break
        agreed.append(b)
    return agreed


def leading(words, keep):
    """The leading `words` for which `keep(word)` holds, up to the first that fails it."""
    out = []
    for word in words:
        if not keep(word):
            break
        out.append(word)
    return out


def sure_prefix(agreed, min_confidence, last_min_confidence, settled_by_s):
    """The leading `agreed` words sure enough to commit: every one of probability
    `min_confidence` or more and the last `last_min_confidence` or more, except that a word
    ending by `settled_by_s` counts as sure whatever its probability (Whisper has heard that
    much past it and still reads it so: more audio will not change it)."""
    def sure(word, floor):
        return word.confidence >= floor or word.end <= settled_by_s

    out = leading(agreed, lambda word: sure(word, min_confidence))
    while out and not sure(out[-1], last_min_confidence):
        out.pop()
    return out


def before(words, limit_s):
    """The leading words that end by `limit_s`."""
    return leading(words, lambda word: word.end <= limit_s)


def closes_sentence(text):
    """True when `text` ends with a full stop, question or exclamation mark (before any closing
    quote or bracket)."""
    return text.rstrip("\"')]”").endswith((".", "?", "!"))


def ends_sentence(words):
    return bool(words) and closes_sentence(words[-1].word)


def heard_words(hypothesis_words, offset_s, cut_s, speech_end_s):
    """The decoded words that belong to the open audio, as session `Word`s.

    A word that starts after the voice stopped was invented, not heard; so were the words from
    a run that Whisper placed at one instant on (`before_a_loop`). One that ends by the cut
    lies wholly in the committed audio: Whisper read a committed word again ("by Wednesday."
    then "Wednesday, Wednesday, our website…"), too short a run for the replay filter to call
    it a replay. A word across the cut keeps its text, starting at it.
    """
    return [Word(word=w.text.strip(), start=max(cut_s, w.start + offset_s), end=w.end + offset_s,
                 confidence=w.probability)
            for w in before_a_loop(hypothesis_words)
            if norm(w.text) and cut_s < w.end + offset_s and w.start + offset_s < speech_end_s]


def before_a_loop(hypothesis_words):
    """The words before the first run of `_INSTANT_RUN` or more that are each aligned to under
    `_INSTANT_WORD_S`: the decoder looping ("counseled him. Stuffed into you his belly countled
    him. Stuff it into your belly," all from "him." on at one instant). The run goes whole,
    though its first word may be the last one heard, squeezed against the loop: a loop's first
    word committed becomes the next decode's forced prefix, which then reads the loop on."""
    run = 0
    for k, word in enumerate(hypothesis_words):
        run = run + 1 if word.end - word.start < _INSTANT_WORD_S else 0
        if run == _INSTANT_RUN:
            return hypothesis_words[:k + 1 - run]
    return hypothesis_words


def unhyphened(words):
    """The decode's first word without a leading hyphen: it continues a committed word
    ("ill" committed, then "-disposed"), and alone it is no word at all."""
    if words and words[0].word.startswith("-") and words[0].word.strip("-"):
        first = words[0]
        return [Word(first.word.lstrip("-"), first.start, first.end, first.confidence)] + words[1:]
    return words


def shifted(words, by_s):
    """`words` moved by `by_s` seconds."""
    return [Word(w.word, w.start + by_s, w.end + by_s, w.confidence) for w in words]
