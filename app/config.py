"""Every Harken setting, read from the environment in one place, with its default."""
import os
from dataclasses import dataclass, field, fields, replace


class ConfigError(ValueError):
    """A setting in the environment has a value Harken cannot use."""


def _bool(text):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _csv(text):
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _compute_type(text):
    """How CTranslate2 runs Whisper: int8 (weights and products quantised) or float32."""
    value = text.strip().lower()
    if value not in ("int8", "float32"):
        raise ValueError("expected int8 or float32")
    return value


@dataclass(frozen=True)
class Settings:
    """Service settings; each field names the environment variable that sets it."""

    api_keys: tuple = field(default=(), metadata={"env": "HARKEN_API_KEYS", "parse": _csv})
    live_streaming_enabled: bool = field(
        default=True, metadata={"env": "ENABLE_LIVE_STREAMING", "parse": _bool})
    max_sessions: int = field(default=200, metadata={"env": "HARKEN_MAX_SESSIONS"})
    max_chunk_bytes: int = field(default=1024 * 1024, metadata={"env": "HARKEN_MAX_CHUNK_BYTES"})
    max_json_bytes: int = field(default=64 * 1024, metadata={"env": "HARKEN_MAX_JSON_BYTES"})
    default_ttl_s: int = field(default=900, metadata={"env": "HARKEN_DEFAULT_TTL_S"})
    min_ttl_s: int = field(default=60, metadata={"env": "HARKEN_MIN_TTL_S"})
    max_ttl_s: int = field(default=3600, metadata={"env": "HARKEN_MAX_TTL_S"})
    result_ttl_s: float = field(default=300.0, metadata={"env": "HARKEN_RESULT_TTL_S"})
    tombstone_ttl_s: float = field(default=3600.0, metadata={"env": "HARKEN_TOMBSTONE_TTL_S"})
    reaper_interval_s: float = field(default=1.0, metadata={"env": "HARKEN_REAPER_INTERVAL_S"})
    heartbeat_s: float = field(default=15.0, metadata={"env": "HARKEN_HEARTBEAT_S"})
    sse_retry_ms: int = field(default=2000, metadata={"env": "HARKEN_SSE_RETRY_MS"})
    event_log_max: int = field(default=20000, metadata={"env": "HARKEN_EVENT_LOG_MAX"})
    status_every_s: float = field(default=1.0, metadata={"env": "HARKEN_STATUS_EVERY_S"})
    summary_every_s: float = field(default=0.0, metadata={"env": "HARKEN_SUMMARY_EVERY_S"})
    max_backlog_s: float = field(default=120.0, metadata={"env": "HARKEN_MAX_BACKLOG_S"})
    max_session_audio_s: float = field(default=4 * 3600.0, metadata={"env": "HARKEN_MAX_SESSION_AUDIO_S"})
    max_file_bytes: int = field(default=512 * 1024 * 1024, metadata={"env": "HARKEN_MAX_FILE_BYTES"})
    max_file_audio_s: float = field(default=4 * 3600.0, metadata={"env": "HARKEN_MAX_FILE_AUDIO_S"})
    max_file_jobs: int = field(default=4, metadata={"env": "HARKEN_MAX_FILE_JOBS"})
    retry_after_s: int = field(default=5, metadata={"env": "HARKEN_RETRY_AFTER_S"})
    # Decoding (docs/audio.md): defaults admit every real upload; a 1 MiB chunk of 6 kbit/s
    # Opus is ~23 minutes of audio in ~70,000 packets (and as many WebM blocks).
    decode_threads: int = field(default=2, metadata={"env": "HARKEN_DECODE_THREADS"})
    max_chunk_audio_s: float = field(default=1800.0, metadata={"env": "HARKEN_MAX_CHUNK_AUDIO_S"})
    max_chunk_frames: int = field(default=200_000, metadata={"env": "HARKEN_MAX_CHUNK_FRAMES"})
    max_audio_header_bytes: int = field(default=1024 * 1024, metadata={"env": "HARKEN_MAX_AUDIO_HEADER_BYTES"})
    max_audio_unit_bytes: int = field(default=16 * 1024 * 1024, metadata={"env": "HARKEN_MAX_AUDIO_UNIT_BYTES"})
    cors_origins: tuple = field(default=(), metadata={"env": "HARKEN_CORS_ORIGINS", "parse": _csv})
    pipeline: str = field(default="speech", metadata={"env": "HARKEN_PIPELINE"})
    workers: int = field(default=0, metadata={"env": "HARKEN_WORKERS"})
    asr_model: str = field(default="whisper-base", metadata={"env": "HARKEN_ASR_MODEL"})
    model_cache_dir: str = field(
        default=os.path.join(os.path.expanduser("~"), ".cache", "harken", "models"),
        metadata={"env": "HARKEN_MODEL_CACHE"})
    asr_threads: int = field(default=1, metadata={"env": "HARKEN_ASR_THREADS"})
    asr_compute_type: str = field(default="int8", metadata={"env": "HARKEN_ASR_COMPUTE_TYPE", "parse": _compute_type})
    asr_final_beam_size: int = field(default=5, metadata={"env": "HARKEN_ASR_FINAL_BEAM_SIZE"})
    asr_final_window_s: int = field(default=10, metadata={"env": "HARKEN_ASR_FINAL_WINDOW_S"})
    asr_final_context_s: float = field(default=12.0, metadata={"env": "HARKEN_ASR_FINAL_CONTEXT_S"})
    asr_catch_up_at: int = field(default=2, metadata={"env": "HARKEN_ASR_CATCH_UP_AT"})
    vad_threshold: float = field(default=0.5, metadata={"env": "HARKEN_VAD_THRESHOLD"})
    vad_end_silence_s: float = field(default=0.4, metadata={"env": "HARKEN_VAD_END_SILENCE_S"})
    vad_sentence_end_silence_s: float = field(default=0.15, metadata={"env": "HARKEN_VAD_SENTENCE_END_SILENCE_S"})
    vad_sentence_end_min_probability: float = field(
        default=0.8, metadata={"env": "HARKEN_VAD_SENTENCE_END_MIN_PROBABILITY"})
    vad_min_speech_s: float = field(default=0.25, metadata={"env": "HARKEN_VAD_MIN_SPEECH_S"})
    max_utterance_s: float = field(default=12.0, metadata={"env": "HARKEN_MAX_UTTERANCE_S"})
    partial_interval_s: float = field(default=0.6, metadata={"env": "HARKEN_PARTIAL_INTERVAL_S"})
    # Cosine similarity of resemblyzer d-vectors: one voice scores about 0.8-0.95 against itself,
    # different voices about 0.4-0.7, so a turn joins the nearest speaker above this bar.
    speaker_similarity: float = field(default=0.72, metadata={"env": "HARKEN_SPEAKER_SIMILARITY"})
    # Scale-out (docs/scaleout.md): unset, sessions live in the one worker's memory.
    redis_url: str = field(default="", metadata={"env": "HARKEN_REDIS_URL"})
    redis_timeout_s: float = field(default=2.0, metadata={"env": "HARKEN_REDIS_TIMEOUT_S"})
    lease_ttl_s: float = field(default=5.0, metadata={"env": "HARKEN_LEASE_TTL_S"})
    forward_timeout_s: float = field(default=60.0, metadata={"env": "HARKEN_FORWARD_TIMEOUT_S"})
    log_level: str = field(default="INFO", metadata={"env": "HARKEN_LOG_LEVEL"})
    log_format: str = field(default="text", metadata={"env": "HARKEN_LOG_FORMAT"})

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """Build settings from `environ` (default os.environ); `overrides` win over both."""
        environ = os.environ if environ is None else environ
        values = {}
        for spec in fields(cls):
            raw = environ.get(spec.metadata["env"])
            if raw is None:
                continue
            parse = spec.metadata.get("parse") or type(spec.default)
            try:
                values[spec.name] = parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{spec.metadata['env']}={raw!r}: {exc}") from None
        settings = cls(**values)
        return replace(settings, **overrides) if overrides else settings

    @property
    def pool_size(self):
        """Worker processes for the models: the setting, else one per core."""
        return self.workers or os.cpu_count() or 1

    @classmethod
    def documented(cls):
        """(environment variable, default) for every setting, for the README and tests."""
        return [(spec.metadata["env"], spec.default) for spec in fields(cls)]
