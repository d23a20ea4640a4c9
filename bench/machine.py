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

# The probe: this many products of the shapes MiniLM's feed-forward layer multiplies for a
# sentence, best of PROBE_REPEATS (the least disturbed by other work on the machine).
PROBE_PRODUCTS = 200
PROBE_REPEATS = 5


def describe():
    """Cores, Python, CPU model and the vector extensions the models' kernels use."""
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
            "load_average": round(os.getloadavg()[0], 2), "speed_probe_ms": speed_probe_ms()}


def speed_probe_ms():
    """CPU milliseconds of a fixed float32 workload on this process's threads: lower is a faster host."""
    rng = np.random.default_rng(0)
    weights, tokens = rng.standard_normal((1536, 384), np.float32), rng.standard_normal((384, 32), np.float32)
    best = float("inf")
    for _ in range(PROBE_REPEATS):
        started = time.process_time()
        for _ in range(PROBE_PRODUCTS):
            weights @ tokens
        best = min(best, time.process_time() - started)
    return round(1000 * best, 2)
