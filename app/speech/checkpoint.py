"""A live session's checkpoint: what another worker needs to carry the session on after its last final.

Taken in the speech worker with each batch of finals and their analytics when the session's
sink keeps checkpoints (a shared store: docs/scaleout.md), and given back to `open` on the
worker that takes the session over. It holds the sample where the resumed stream starts
(the first audio no published final holds), the recognizer's numbering and last words, the
speakers' voice prints and the analytics' whole state, so labels, ids, moments and the
summary go on as if nothing happened.

The state is many small classes (the analytics' trackers change as they grow), so it is
pickled rather than mapped to JSON field by field; the loaded models it refers to are
written as their names and bound to the new worker's own models on load. The result is
JSON-able: `{"samples": n, "state": base64}`. Trust: a pickle runs code when loaded, so the
store that keeps checkpoints must be as private to Harken as its hosts (the same rule as
Celery's or RQ's pickled jobs in Redis).
"""
import base64
import dataclasses
import io
import pickle
import zlib

_SCALARS = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)


def dump(samples, state, models):
    """The JSON-able checkpoint of `state` (any picklable object), resuming at session sample `samples`."""
    buffer = io.BytesIO()
    _ModelAwarePickler(buffer, _model_names(models)).dump(state)
    return {"samples": int(samples), "state": base64.b64encode(zlib.compress(buffer.getvalue(), 1)).decode("ascii")}


def load(checkpoint, models):
    """The state inside `checkpoint`, its model references bound to this worker's `models`."""
    raw = zlib.decompress(base64.b64decode(checkpoint["state"]))
    return _ModelAwareUnpickler(io.BytesIO(raw), {name: obj for obj, name in _model_names(models).values()}).load()


def _model_names(models):
    """{id(object): (object, name)} of every loaded model a session's state may point at.

    `models` is the worker's `LoadedModels`: its attributes, and the attributes of the
    analytics' `Models` inside it, each named by its path. Plain values are left out: they
    pickle as themselves.
    """
    named = {}

    def visit(prefix, holder):
        if holder is None or isinstance(holder, _SCALARS):
            return
        named[id(holder)] = (holder, prefix)
        fields = [f.name for f in dataclasses.fields(holder)] if dataclasses.is_dataclass(holder) else []
        for name in fields:
            visit(f"{prefix}.{name}", getattr(holder, name))

    for name in ("asr", "speakers", "analytics"):
        visit(name, getattr(models, name, None))
    return named


class _ModelAwarePickler(pickle.Pickler):
    def __init__(self, file, names):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = names

    def persistent_id(self, obj):
        found = self._names.get(id(obj))
        return found[1] if found is not None else None


class _ModelAwareUnpickler(pickle.Unpickler):
    def __init__(self, file, models):
        super().__init__(file)
        self._models = models

    def persistent_load(self, pid):
        try:
            return self._models[pid]
        except KeyError:
            raise pickle.UnpicklingError(f"the checkpoint names a model this worker lacks: {pid}") from None
