"""The controller service: broker connection, inbox (ingest), tick (policy → assignments), janitor, entry point."""
