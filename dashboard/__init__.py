"""The operators' dashboard (FastAPI)."""
