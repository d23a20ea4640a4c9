"""The embedded speech stages: model assembly, VAD, streaming Whisper, speakers, and their worker processes."""
