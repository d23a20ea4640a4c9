"""Compressed containers (Ogg, WebM, MP4, MP3, FLAC) are decoded by the speech pipeline's demuxer."""
from .errors import UndecodableAudio


def open_container_decoder(kind):
    """A decoder for `kind`; until the demuxer lands only WAV and raw PCM are readable."""
    raise UndecodableAudio(f"audio in {kind or 'this'} format is not supported yet: send WAV or raw PCM")
