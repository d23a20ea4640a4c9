"""Tell an audio container from its first bytes, so a wrong or default suffix does no harm."""

WAV, OGG, WEBM, MP4, MP3, FLAC = "wav", "ogg", "webm", "mp4", "mp3", "flac"

SUFFIX_KINDS = {
    ".wav": WAV, ".wave": WAV, ".ogg": OGG, ".opus": OGG, ".oga": OGG, ".webm": WEBM,
    ".mkv": WEBM, ".mka": WEBM, ".mp4": MP4, ".m4a": MP4, ".aac": MP4, ".mov": MP4,
    ".mp3": MP3, ".flac": FLAC,
}
RAW_SUFFIXES = (".pcm", ".raw")
SUPPORTED_SUFFIXES = tuple(SUFFIX_KINDS) + RAW_SUFFIXES

# How many leading bytes `sniff` needs to decide.
SNIFF_BYTES = 12


def sniff(head):
    """The container kind of a stream starting with `head`, or None if unknown."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    if head[4:8] in (b"ftyp", b"moof", b"styp", b"moov"):
        return MP4
    if head[:4] == b"fLaC":
        return FLAC
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    return None
