"""What a benchmark ran on, written into its JSON.

CTranslate2's int8 kernels and ONNX Runtime pick code paths by CPU: the same audio gives
slightly different readings, and quite different speed, on a CPU with AVX-512 VNNI than on
one without. Figures are comparable only with this beside them.

The same host also runs at different speeds at different hours (a shared machine: the
sentence encoder took 13.5 ms one evening and 20.3 ms the next night), so every description
carries a speed probe taken when the bench starts: figures from two runs compare only when
their probes agree.
"""
import os
import platform
import time

import numpy as np

# The probe: this many passes of element-wise float32 work over a 64k array (numpy runs it on one
# thread whatever BLAS is set to), best of PROBE_REPEATS (the least disturbed by other work).
PROBE_PASSES = 2000
PROBE_REPEATS = 5


def describe():
    """Cores, Python, CPU model and the vector extensions the models' kernels use, and how Whisper runs on them."""
    from app.config import Settings  # the bench put the repository on sys.path
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": model or platform.processor(),
            "vector": sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"}),
            # int8 and float32 read the same audio differently (docs/speech.md, "Models").
            "asr_compute_type": Settings.from_env().asr_compute_type,
            "load_average": round(os.getloadavg()[0], 2), "speed_probe_ms": speed_probe_ms()}


def speed_probe_ms():
    """CPU milliseconds of a fixed float32 workload on one thread: lower is a faster host."""
    x = np.linspace(-4, 4, 1 << 16, dtype=np.float32)
    out = np.empty_like(x)
    best = float("inf")
    for _ in range(PROBE_REPEATS):
        started = time.process_time()
        for _ in range(PROBE_PASSES):
            np.exp(x, out=out)
            out *= x
            out += x
        best = min(best, time.process_time() - started)
    return round(1000 * best, 2)
