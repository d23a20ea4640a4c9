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
JSON-able: `{"samples": n, "state": base64}`.

Trust: a pickle calls whatever its globals name, so the store that keeps checkpoints must be
as private to Harken as its hosts (the same rule as Celery's or RQ's pickled jobs in Redis).
Loading admits only what a session's state is made of, so that a checkpoint written into the
store by anyone else cannot name a shell, `eval` or a module outside Harken: classes defined
in the modules of `STATE_MODULES`, the defaultdict factory `STATE_FUNCTIONS` names, and the
builtins, collections and numpy names of `PLAIN_GLOBALS`. A checkpoint naming anything else
fails to load (`CheckpointError`), and its session fails with it.
"""
import base64
import dataclasses
import io
import pickle
import zlib

_SCALARS = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)
#: Packages whose own classes a session's state holds (the analytics, the recognizer's resume
#: point, the speakers, the events kept for the summary).
STATE_MODULES = ("app.analytics.", "app.speech.", "client.events")
#: Module-level functions a state holds: defaultdict factories.
STATE_FUNCTIONS = {("app.analytics.baseline", "speaker_norms")}
#: Everything else a state's pickle may name: containers, numbers and numpy arrays (numpy 1 and 2 spellings).
PLAIN_GLOBALS = {("builtins", name) for name in ("bool", "bytearray", "bytes", "complex", "dict", "float",
                                                 "frozenset", "int", "list", "set", "slice", "str", "tuple")} | \
    {("collections", name) for name in ("Counter", "OrderedDict", "defaultdict", "deque")} | \
    {("numpy", "dtype"), ("numpy", "ndarray")} | \
    {(f"numpy.{core}.{module}", name) for core in ("core", "_core")
     for module, name in (("numeric", "_frombuffer"), ("multiarray", "_reconstruct"), ("multiarray", "scalar"))}


class CheckpointError(pickle.UnpicklingError):
    """A checkpoint that names something a session's state is not made of, or a model this worker lacks."""


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
        except (KeyError, TypeError):
            raise CheckpointError(f"the checkpoint names a model this worker lacks: {pid!r:.80}") from None

    def find_class(self, module, name):
        """The class or function `module.name`, if a session's state may hold it (the module docstring)."""
        if (module, name) in PLAIN_GLOBALS or (module, name) in STATE_FUNCTIONS:
            return super().find_class(module, name)
        if module.startswith(STATE_MODULES) and name.isidentifier():
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise CheckpointError(f"a checkpoint may not name {module:.80}.{name:.80}")
