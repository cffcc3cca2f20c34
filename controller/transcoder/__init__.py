"""The central transcoder: raw objects become FLAC (or zstd) objects, verified before the raw one is deleted
(docs/transcoder.md)."""
