"""The fleet controller: ingest over MQTT, state in SQL, a pure policy, assignments out."""
