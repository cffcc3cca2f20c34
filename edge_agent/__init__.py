"""The Raspberry Pi side: spool watching, streaming FLAC, resumable multipart uploads, MQTT."""
