"""WAV -> FLAC object codec: streaming encode (source), restore and verify. See docs/audio-format.md."""
