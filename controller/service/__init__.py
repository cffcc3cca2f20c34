"""The controller service: MQTT adapter, ingest, tick (policy → assignments), janitor, entry point."""
