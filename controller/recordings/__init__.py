"""The recordings catalog: completed uploads become catalog rows with what the stored object says about the
recording (recorded-at, audio format, the recorder's own metadata)."""
