"""The failures a decoder reports."""


class UndecodableAudio(ValueError):
    """The bytes are not audio this decoder can read; the decoder's state is unchanged."""


class DecodeLimitExceeded(ValueError):
    """The bytes may be audio, but more of it than one call may decode; the state is unchanged.

    `kind` is "seconds" (decoded audio) or "frames" (codec frames); `limit` is the bound passed.
    """

    def __init__(self, kind, limit):
        super().__init__(f"more than {limit:g} {kind} of audio in one chunk")
        self.kind, self.limit = kind, limit
