"""The tensors of a file `torch.save` wrote in its legacy format, read as numpy arrays without torch.

resemblyzer's `pretrained.pt` is such a file (torch before 1.6 wrote no other). The format is
five pickles and then the raw storages: a magic number, the protocol version (1001), the
writer's byte order and type sizes, the saved object itself, in which each storage is a
persistent id `("storage", type, key, location, element count, view)` and each tensor a call
of torch's `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, and the storage keys in
the order their data follows; each storage is then an int64 element count and its elements.

A pickle runs whatever callables it names, so the unpickler here admits only the names such a
state dict uses (an OrderedDict, `_rebuild_tensor_v2`, the storage types below) and maps them
to plain data; anything else is refused. Callers check the file's SHA-256 before reading it.
"""
import pickle
import zipfile

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
#: The storage types admitted, and their element types (little-endian, checked against the file's header).
STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "LongStorage": np.dtype("<i8")}


def load(path):
    """The object saved in `path` with every tensor as a numpy array (a copy, C-contiguous)."""
    if zipfile.is_zipfile(path):
        raise pickle.UnpicklingError(f"{path} is in torch's zip format (torch 1.6 and later), not the legacy one")
    with open(path, "rb") as f:
        header = [_DataUnpickler(f).load() for _ in range(3)]
        if header[:2] != [MAGIC, PROTOCOL]:
            raise pickle.UnpicklingError(f"{path} is not a legacy torch file (it starts {header[:2]!r})")
        if not isinstance(header[2], dict) or header[2].get("little_endian") is not True:
            raise pickle.UnpicklingError(f"{path} was written big-endian or without its byte order")
        unpickler = _StateUnpickler(f)
        saved = unpickler.load()
        for key in _DataUnpickler(f).load():
            if key not in unpickler.storages:
                raise pickle.UnpicklingError(f"the file holds data for storage {key!r:.50}, which nothing uses")
            unpickler.storages[key].read(f)
    return _materialise(saved)


class _Storage:
    """A storage named by the saved object; its elements follow the pickles."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None

    def read(self, f):
        numel = int(np.frombuffer(_exactly(f, 8), "<i8")[0])
        if numel != self.numel:
            raise pickle.UnpicklingError(f"a storage holds {numel} elements where its id says {self.numel}")
        self.data = np.frombuffer(_exactly(f, numel * self.dtype.itemsize), self.dtype)


class _Tensor:
    """`_rebuild_tensor_v2`'s arguments, turned into an array once the storages are read."""

    def __init__(self, storage, offset, size, stride, *_):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def array(self):
        data = self.storage.data
        if data is None:
            raise pickle.UnpicklingError("a tensor's storage has no data in the file")
        if (len(self.size) != len(self.stride) or self.offset < 0 or min(self.size + self.stride, default=0) < 0
                or (0 not in self.size and self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
                    >= len(data))):
            raise pickle.UnpicklingError(f"a tensor of size {self.size}, stride {self.stride} at {self.offset} "
                                         f"lies outside its storage of {len(data)} elements")
        start = data[self.offset:] if 0 not in self.size else data[:0]
        view = np.lib.stride_tricks.as_strided(start, self.size, [s * data.itemsize for s in self.stride],
                                               writeable=False)
        return np.array(view, order="C")


class _StateDict(dict):
    """An OrderedDict as torch saves a state dict: its `_metadata` attribute is set and ignored."""

    def __setstate__(self, state):
        pass


class _DataUnpickler(pickle.Unpickler):
    """Plain data only: the header pickles and the storage keys name no callable."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: the file's header names no code")


class _StateUnpickler(pickle.Unpickler):
    _ADMITTED = {("collections", "OrderedDict"): _StateDict, ("torch._utils", "_rebuild_tensor_v2"): _Tensor}

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        try:
            return self._ADMITTED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: not part of a saved state dict") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.200}")
        _, dtype, key, _location, numel, view = pid
        if not isinstance(dtype, np.dtype) or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r:.200}")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, int(numel))
        return self.storages[key]


def _exactly(f, size):
    data = f.read(size)
    if len(data) != size:
        raise pickle.UnpicklingError("the file ends inside a storage")
    return data


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {key: _materialise(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value) for value in obj)
    return obj
