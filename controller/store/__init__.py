"""The controller's SQL store: tables (``models``), engine and reads/writes (``repo``), ingest batches, assignments."""
