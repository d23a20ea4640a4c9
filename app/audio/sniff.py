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

_MP4_FIRST_BOXES = (b"ftyp", b"moof", b"styp", b"moov")
# Every top-level box the MP4 framer reads; a stream announced as MP4 may start with any.
MP4_BOXES = frozenset(_MP4_FIRST_BOXES) | {b"mdat", b"sidx", b"free", b"skip", b"uuid", b"emsg", b"prft",
                                          b"mfra", b"wide", b"pdin", b"meta", b"ssix"}


def sniff(head):
    """The container kind of a stream starting with `head`, or None if unknown."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    if head[4:8] in _MP4_FIRST_BOXES:
        return MP4
    if head[:4] == b"fLaC":
        return FLAC
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    return None


def could_start_stream(head, max_header_bytes):
    """Whether `head`, shorter than SNIFF_BYTES, is the start of some stream `sniff` recognises.

    Fewer bytes than a decision needs are held only when more bytes could still make a
    stream of them; anything else is refused at once, so it is never accepted into a
    session whose every later chunk it would then spoil.
    """
    if not head:
        return True
    signatures = (b"OggS", b"\x1a\x45\xdf\xa3", b"fLaC", b"ID3")
    if any(_is_prefix(head[:len(sig)], sig) for sig in signatures):
        return True
    if _is_prefix(head[:4], b"RIFF") and _is_prefix(head[8:12], b"WAVE"):
        return True
    if head[0] == 0xFF and (len(head) == 1 or head[1] & 0xE0 == 0xE0):
        return True
    # MP4: a 32-bit box size (at least 8, or 1 for a 64-bit size; a first box is header-sized),
    # then one of the boxes the framer reads.
    size_prefix = head[:4]
    smallest = int.from_bytes(size_prefix + b"\x00" * (4 - len(size_prefix)), "big")
    if smallest > max_header_bytes:
        return False
    return any(_is_prefix(head[4:8], box) for box in MP4_BOXES)


def _is_prefix(part, whole):
    return whole[:len(part)] == part
