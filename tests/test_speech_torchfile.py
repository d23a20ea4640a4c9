"""The legacy torch file reader (app/speech/torchfile.py) against torch.load, and what it refuses."""
import io
import os
import pickle

import numpy as np
import pytest

from app.speech import diarization, torchfile


def legacy_file(saved, storages=()):
    """Bytes of a legacy torch file holding the pickle `saved` (bytes) and `storages` [(key, float32 array)]."""
    out = io.BytesIO()
    for header in (torchfile.MAGIC, torchfile.PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(saved)
    pickle.dump([key for key, _ in storages], out, protocol=2)
    for _, array in storages:
        out.write(np.int64(array.size).tobytes() + array.astype("<f4").tobytes())
    return out.getvalue()


def test_resemblyzers_weights_read_as_torch_reads_them():
    """Every tensor of pretrained.pt (the model's and the optimiser's) equals torch.load's, bit for bit."""
    import torch
    path = diarization._weights_path()
    ours, theirs = torchfile.load(path), torch.load(path, map_location="cpu")

    def same(a, b):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, np.ndarray) and a.dtype == np.float32 and np.array_equal(a, b.numpy())
            return 1
        if isinstance(b, dict):
            assert a.keys() == b.keys()
            return sum(same(a[k], b[k]) for k in b)
        if isinstance(b, (list, tuple)):
            return sum(same(x, y) for x, y in zip(a, b, strict=True))
        assert a == b
        return 0

    assert same(ours, theirs) == 48


def test_a_pickle_that_names_other_code_is_refused(tmp_path):
    """A file whose pickle calls anything but a state dict's names is refused before it runs."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pt"
    path.write_bytes(legacy_file(pickle.dumps({"model_state": Payload()}, protocol=2)))
    with pytest.raises(pickle.UnpicklingError, match="refused to load posix.system"):
        torchfile.load(path)
    assert not marker.exists()


def test_views_and_dtypes_saved_by_torch_read_back(tmp_path):
    """A legacy file torch writes now, with a transposed view, a slice at an offset and int64, reads back equal."""
    import torch
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    saved = {"t": base.t(), "slice": base[1:3, 2:], "ids": torch.arange(5), "nested": [base.double()], "step": 3}
    path = tmp_path / "legacy.pt"
    torch.save(saved, path, _use_new_zipfile_serialization=False)
    ours = torchfile.load(path)
    assert np.array_equal(ours["t"], base.t().numpy()) and ours["t"].flags.c_contiguous
    assert np.array_equal(ours["slice"], base[1:3, 2:].numpy())
    assert ours["ids"].dtype == np.int64 and ours["ids"].tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(ours["nested"][0], base.double().numpy()) and ours["step"] == 3


def test_the_zip_format_is_refused_clearly(tmp_path):
    """torch's newer zip format is not this reader's: it says so instead of misreading it."""
    import torch
    path = tmp_path / "zip.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(pickle.UnpicklingError, match="zip format"):
        torchfile.load(path)


def test_a_tensor_outside_its_storage_is_refused():
    """A tensor's offset, size and stride must stay inside the storage the file holds."""
    storage = torchfile._Storage(np.dtype("<f4"), 4)
    storage.data = np.arange(4, dtype=np.float32)
    assert torchfile._Tensor(storage, 1, (3,), (1,), False, {}).array().tolist() == [1, 2, 3]
    for offset, size, stride in ((2, (3,), (1,)), (0, (2, 2), (3, 1)), (-1, (1,), (1,)), (0, (2,), (-1,))):
        with pytest.raises(pickle.UnpicklingError, match="outside its storage"):
            torchfile._Tensor(storage, offset, size, stride).array()


def test_changed_weights_are_refused(monkeypatch):
    """The speaker encoder checks pretrained.pt's pinned SHA-256 before unpickling anything."""
    monkeypatch.setattr(diarization, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(diarization.ModelUnavailable, match="pretrained.pt has SHA-256"):
        diarization.SpeakerEncoder()
