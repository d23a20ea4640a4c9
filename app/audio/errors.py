"""The one failure a decoder reports."""


class UndecodableAudio(ValueError):
    """The bytes are not audio this decoder can read; the decoder's state is unchanged."""
