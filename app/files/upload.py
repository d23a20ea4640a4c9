"""The multipart upload of a recorded file, streamed to a temporary file on disk, never held in memory."""
import os
import tempfile
from dataclasses import dataclass, field
from typing import Optional

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from .. import errors, inputs

# Form fields other than the file are short; more parts than this is not an upload of ours.
MAX_FORM_PARTS = 16
# Werkzeug's multipart parser reads 64 KiB at a time; its memory bound must leave room for one read.
READ_BYTES = 64 * 1024


@dataclass
class Upload:
    """The uploaded file (open, deleted when closed) and the form's other fields."""

    file: object
    filename: str
    size: int
    goal: Optional[str] = None
    language: str = "en"
    metadata: dict = field(default_factory=dict)

    @property
    def path(self):
        return self.file.name

    def close(self):
        """Delete the file from disk."""
        self.file.close()


def _to_disk(total_content_length, content_type, filename, content_length=None):
    """Werkzeug's stream factory: every file part goes straight to a deleted-on-close temp file."""
    suffix = os.path.splitext(filename or "")[1][:12]
    return tempfile.NamedTemporaryFile(prefix="harken-upload-", suffix=suffix if suffix.isascii() else "")


def receive(settings):
    """Read the multipart body of POST /analyze: `file` (required), `goal`, `language`, `metadata`."""
    if request.mimetype != "multipart/form-data":
        raise errors.UnsupportedMediaType(
            "Send the recording as multipart/form-data with a `file` part.")
    try:
        parser = FormDataParser(
            stream_factory=_to_disk, max_content_length=settings.max_file_bytes,
            max_form_memory_size=settings.max_json_bytes + READ_BYTES, max_form_parts=MAX_FORM_PARTS,
            silent=False)
        _, form, files = parser.parse_from_environ(request.environ)
    except RequestEntityTooLarge:
        raise errors.PayloadTooLarge(f"The upload exceeds {settings.max_file_bytes} bytes.",
                                     max_bytes=settings.max_file_bytes) from None
    except ValueError:
        raise errors.BadRequest("The multipart body could not be read.") from None
    for name, part in files.items(multi=True):
        if name != "file":
            part.close()
    part = files.get("file")
    if part is None:
        raise errors.ValidationFailed("file: is required", field="file")
    disk_file = part.stream
    size = disk_file.seek(0, os.SEEK_END)
    disk_file.seek(0)
    if not size:
        disk_file.close()
        raise errors.EmptyFile("file: is empty", field="file")
    options = inputs.analyze_options(form.to_dict())
    return Upload(disk_file, part.filename or "", size, **options)
