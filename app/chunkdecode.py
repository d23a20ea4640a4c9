"""A live session's stream decoder, run in the decode pool, with its refusals as API errors.

Shared by the embedded session (app/session.py) and the scale-out lease holder
(app/shared/holder.py): both decode a session's chunks in order and answer a bad one
with the same 422/413 before anything is stored.
"""
from . import errors
from .audio import Budget, DecodeLimitExceeded, DecodeLimits, UndecodableAudio, open_decoder


class ChunkDecoder:
    """One session's decoder: `decode` a chunk within the session's audio budget, `flush` at the end."""

    def __init__(self, options, settings, decoding, metrics):
        self._settings = settings
        self._decoding = decoding
        self._metrics = metrics
        self._decoder = open_decoder(options.suffix, options.sample_rate, options.channels,
                                     DecodeLimits(settings.max_audio_header_bytes,
                                                  settings.max_audio_unit_bytes))

    def decode(self, chunk_seq, data, audio_seconds):
        """The chunk's samples, decoded in the pool within this chunk's budget; refusals as API errors."""
        try:
            return self._decoding.run(self._decoder.decode, data, self._budget(audio_seconds))
        except UndecodableAudio as exc:
            self._metrics.chunks.labels("invalid").inc()
            raise errors.InvalidChunk(f"Chunk {chunk_seq} is not readable audio: {exc}",
                                      chunk_seq=chunk_seq, expected_chunk_seq=chunk_seq) from None
        except DecodeLimitExceeded as exc:
            self._metrics.chunks.labels("too_large").inc()
            raise self._limit_error(chunk_seq, exc) from None

    def flush(self, audio_seconds):
        """The end of the stream's samples; raises UndecodableAudio or DecodeLimitExceeded."""
        return self._decoding.run(self._decoder.flush, self._budget(audio_seconds))

    def _budget(self, audio_seconds):
        """What one chunk (or the end-of-stream flush) may decode: the chunk cap, within the session's."""
        remaining_s = max(0.0, self._settings.max_session_audio_s - audio_seconds)
        return Budget(seconds=min(self._settings.max_chunk_audio_s, remaining_s),
                      frames=self._settings.max_chunk_frames)

    def _limit_error(self, chunk_seq, exc):
        settings = self._settings
        where = dict(chunk_seq=chunk_seq, expected_chunk_seq=chunk_seq)
        if exc.kind == "frames":
            return errors.TooManyAudioFrames(
                f"Chunk {chunk_seq} holds more than {exc.limit} codec frames; send smaller chunks.",
                max_frames=exc.limit, **where)
        if exc.limit < settings.max_chunk_audio_s:  # the session's cap was the nearer one
            return errors.PayloadTooLarge(
                f"Chunk {chunk_seq} would take the session past its limit of "
                f"{settings.max_session_audio_s:.0f} s of audio.",
                limit_seconds=settings.max_session_audio_s, **where)
        return errors.DecodedAudioTooLong(
            f"Chunk {chunk_seq} decodes to more than {exc.limit:g} s of audio; send smaller chunks.",
            limit_seconds=exc.limit, **where)
