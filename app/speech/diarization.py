"""Live speaker labels: resemblyzer d-vectors clustered online into Speaker_0, Speaker_1, … per session."""
import numpy as np

from ..audio import TARGET_RATE_HZ
from . import torchfile
from ..modelfiles import ModelUnavailable, verify_sha256

# Shorter speech gives an embedding too noisy to found a new speaker on.
MIN_NEW_SPEAKER_S = 1.0
MAX_SPEAKERS = 8


class SpeakerEncoder:
    """Resemblyzer's voice encoder (its pretrained weights, from its wheel) run by our own code, on numpy.

    The network is resemblyzer's (a 3-layer LSTM over 40-band mel frames, a linear layer, ReLU,
    L2 norm; embeddings of 1.6 s partials averaged). Importing the `resemblyzer` package itself
    pulls in librosa, numba, SciPy and webrtcvad for its mel spectrogram and file preprocessing,
    and the first embedding JIT-compiles librosa's kernels: tens of MiB per worker for a
    spectrogram numpy computes alike (`mel_frames`, checked against librosa's in
    tests/test_speech_units.py). Running the network needs no torch either (180-206 MiB per
    worker): the weights are read from `pretrained.pt` by `torchfile`, after its SHA-256 is
    checked, and the LSTM is a loop of float32 matrix products (`_lstm`).
    """

    def __init__(self):
        path = _weights_path()
        verify_sha256(path, WEIGHTS_SHA256, "resemblyzer")
        state = torchfile.load(path)["model_state"]
        self._layers = [_lstm_layer(state, index) for index in range(_LAYERS)]
        self._linear = (np.ascontiguousarray(state["linear.weight"].T), state["linear.bias"])
        self._mel_basis = mel_filters()
        self._window = np.hanning(_FFT + 1)[:-1]  # periodic Hann, as librosa's stft uses

    def embed(self, audio):
        """A unit-length 256-d embedding of `audio` (16 kHz mono float32), as resemblyzer's
        `embed_utterance(audio)` computes it."""
        slices = _partial_slices(len(audio))
        end = slices[-1].stop * _HOP
        audio = audio.astype(np.float32, copy=False)
        if end >= len(audio):
            audio = np.pad(audio, (0, end - len(audio)))
        mel = mel_frames(audio, self._mel_basis, self._window)
        hidden = _lstm(np.stack([mel[s] for s in slices], axis=1), self._layers)
        weight, bias = self._linear
        raw = np.maximum(hidden @ weight + bias, 0)
        partials = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        mean = partials.mean(axis=0)
        return mean / np.linalg.norm(mean, 2)


def _lstm_layer(state, index):
    """One LSTM layer's weights, arranged for `_lstm`: (input weights, hidden weights, bias), transposed.

    torch stacks the gates' rows as input, forget, cell, output; here they become input,
    forget, output, cell, and the three sigmoid gates' rows are halved (exactly: a power of
    two), so that one tanh over all four gives the sigmoids as 0.5 * tanh(x / 2) + 0.5.
    """
    order = np.r_[0:2 * _HIDDEN, 3 * _HIDDEN:4 * _HIDDEN, 2 * _HIDDEN:3 * _HIDDEN]
    scale = np.r_[np.full(3 * _HIDDEN, 0.5, np.float32), np.ones(_HIDDEN, np.float32)]
    weight_in, weight_hidden = (state[f"lstm.weight_{kind}_l{index}"][order] * scale[:, None] for kind in ("ih", "hh"))
    bias = (state[f"lstm.bias_ih_l{index}"] + state[f"lstm.bias_hh_l{index}"])[order] * scale
    return np.ascontiguousarray(weight_in.T), np.ascontiguousarray(weight_hidden.T), bias


def _lstm(frames, layers):
    """The last layer's hidden state after the last frame, (batch, hidden), of a stacked LSTM over
    `frames` (time, batch, features) float32, as torch.nn.LSTM computes it from zero states.

    Each step is a dozen numpy calls on preallocated arrays; the recurrent product is shaped
    in the shape OpenBLAS multiplies fastest (`_recurrent_shape`).
    """
    steps, partials, features = frames.shape
    batch, width = _recurrent_shape(partials)
    if batch > partials:  # a zero partial: rows are independent, and it is dropped at the end
        frames = np.concatenate([frames, np.zeros((steps, batch - partials, features), np.float32)], axis=1)
    gates = np.empty((batch, 4 * _HIDDEN), np.float32)
    sigmoids, forget, output, cell_input, input_gate = (
        gates[:, :3 * _HIDDEN], gates[:, _HIDDEN:2 * _HIDDEN], gates[:, 2 * _HIDDEN:3 * _HIDDEN],
        gates[:, 3 * _HIDDEN:], gates[:, :_HIDDEN])
    blocks = [slice(start, start + width) for start in range(0, 4 * _HIDDEN, width)]
    new_input = np.empty((batch, _HIDDEN), np.float32)
    for weight_in, weight_hidden, bias in layers:
        # Every step's input term at once, as one 2-D product (a 3-D one would be a product per step).
        projected = (frames.reshape(steps * batch, -1) @ weight_in).reshape(steps, batch, 4 * _HIDDEN)
        projected += bias
        outputs = np.empty((steps, batch, _HIDDEN), np.float32)
        cell = np.zeros((batch, _HIDDEN), np.float32)
        hidden = np.zeros((batch, _HIDDEN), np.float32)
        for step in range(steps):
            for block in blocks:
                np.matmul(hidden, weight_hidden[:, block], out=gates[:, block])
            gates += projected[step]
            np.tanh(gates, out=gates)
            sigmoids *= 0.5
            sigmoids += 0.5
            cell *= forget
            np.multiply(input_gate, cell_input, out=new_input)
            cell += new_input
            hidden = outputs[step]
            np.tanh(cell, out=hidden)
            hidden *= output
        frames = outputs
    return hidden[:partials]


def _recurrent_shape(partials):
    """(rows, column block width) of the recurrent product (rows × hidden) @ (hidden × 4·hidden).

    For a few rows OpenBLAS spends longer copying ("packing") the weights than multiplying,
    unless the product is small, and its small-product kernel is slow on 3 rows. Measured with
    numpy's OpenBLAS (0.3.31, SkylakeX kernels) inside `_lstm` on real speech: 5 partials 69 →
    36 ms an embedding in 512-column blocks, 9 partials 82 → 54 ms in 256-column blocks, 3
    partials 25.2 → 22.9 ms as 4 rows (one of zeros) in 512-column blocks; padding other counts
    cost more than it saved, and 1-2 or 13 or more partials gained nothing from blocks.
    """
    rows = 4 if partials == 3 else partials
    return rows, 512 if 4 <= rows <= 6 else 256 if 7 <= rows <= 12 else 4 * _HIDDEN


# Resemblyzer's hyperparameters: 25 ms windows every 10 ms, 40 mel bands, 1.6 s partials,
# 1.3 partials a second, a last partial kept when three quarters of it is audio.
_FFT = 400
_HOP = 160
_MEL_BANDS = 40
_HIDDEN = 256
_LAYERS = 3
_PARTIAL_FRAMES = 160
_PARTIALS_PER_S = 1.3
_MIN_COVERAGE = 0.75
#: SHA-256 of resemblyzer 0.1.4's pretrained.pt (the pinned wheel's): other weights are refused, not guessed at.
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"


def _weights_path():
    """resemblyzer's pretrained.pt, found without importing the package (which imports librosa)."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the speaker encoder needs the Python package 'resemblyzer': "
                               "install the `speech` extra (scripts/bootstrap does)")
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


def _partial_slices(samples):
    """The mel-frame slices of the 1.6 s partials covering `samples` (resemblyzer's `compute_partial_slices`)."""
    frames = int(np.ceil((samples + 1) / _HOP))
    step = int(np.round((TARGET_RATE_HZ / _PARTIALS_PER_S) / _HOP))
    slices = [slice(i, i + _PARTIAL_FRAMES) for i in range(0, max(1, frames - _PARTIAL_FRAMES + step + 1), step)]
    last = slices[-1]
    if (samples - last.start * _HOP) / (_PARTIAL_FRAMES * _HOP) < _MIN_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


def mel_frames(audio, basis, window):
    """The power mel spectrogram of `audio`, (frames, bands) float32, as librosa's
    `melspectrogram(y=audio, sr=16000, n_fft=400, hop_length=160, n_mels=40)` computes it:
    centred frames over zero padding, a periodic Hann window, |STFT|², Slaney mel filters."""
    padded = np.pad(audio, (_FFT // 2, _FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, _FFT)[::_HOP]
    power = np.abs(np.fft.rfft(frames * window, axis=-1).astype(np.complex64)) ** 2
    return (power @ basis.T).astype(np.float32)


def mel_filters(bands=_MEL_BANDS, n_fft=_FFT, rate=TARGET_RATE_HZ):
    """Slaney-style mel filters with Slaney area normalisation (librosa's `filters.mel` defaults)."""
    def hz_to_mel(hz):
        hz = np.asanyarray(hz, dtype=np.float64)
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0),
                        hz * 3.0 / 200.0)

    def mel_to_hz(mel):
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200.0 / 3.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(rate / 2), bands + 2))
    ramps = np.subtract.outer(edges, np.fft.rfftfreq(n_fft, 1.0 / rate))
    widths = np.diff(edges)
    weights = np.maximum(0, np.minimum(-ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


class OnlineSpeakers:
    """One session's speakers: running-mean centroids, labels in order of first appearance."""

    def __init__(self, encoder, threshold):
        """`threshold`: HARKEN_SPEAKER_SIMILARITY, the cosine similarity above which a turn joins a speaker."""
        self._encoder = encoder
        self._threshold = threshold
        self._centroids = []
        self._last = 0

    def assign(self, audio):
        """The label of the speaker of `audio`, creating a new speaker when nobody matches."""
        duration_s = len(audio) / TARGET_RATE_HZ
        if duration_s < 0.3:
            return self._label(self._last)
        if not self._centroids and duration_s < MIN_NEW_SPEAKER_S:
            return self._label(0)  # the first speaker, founded by `learn` once its turn is heard whole
        vector = self._encoder.embed(audio)
        if self._centroids:
            similarities = [float(np.dot(vector, c) / np.linalg.norm(c)) for c in self._centroids]
            best = int(np.argmax(similarities))
            confident_new = duration_s >= MIN_NEW_SPEAKER_S and len(self._centroids) < MAX_SPEAKERS
            if similarities[best] >= self._threshold or not confident_new:
                self._fold(best, vector, duration_s)
                return self._label(best)
        self._fold(len(self._centroids), vector, duration_s)
        return self._label(len(self._centroids) - 1)

    def learn(self, label, audio):
        """Fold a finished turn's audio into its speaker's centroid.

        A turn's label is chosen at its first final, often from its first second or two; the
        whole turn gives a steadier voice print for the turns to come.
        """
        index = int(label.rsplit("_", 1)[1])
        duration_s = len(audio) / TARGET_RATE_HZ
        if duration_s < MIN_NEW_SPEAKER_S or index > len(self._centroids):
            return
        self._fold(index, self._encoder.embed(audio), duration_s)

    def _fold(self, index, vector, duration_s):
        """Add `vector` to centroid `index` (a new one at the end), weighted by duration.

        The weight is capped so an old monologue does not freeze the centroid.
        """
        weighted = min(duration_s, 10.0) * vector
        if index == len(self._centroids):
            self._centroids.append(weighted)
        else:
            self._centroids[index] = self._centroids[index] + weighted

    def _label(self, index):
        self._last = index
        return f"Speaker_{index}"
