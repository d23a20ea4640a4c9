"""What a benchmark ran on, written into its JSON.

CTranslate2's int8 kernels and ONNX Runtime pick code paths by CPU: the same audio gives
slightly different readings, and quite different speed, on a CPU with AVX-512 VNNI than on
one without. Figures are comparable only with this beside them.
"""
import os
import platform


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
            "vector": sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"})}
