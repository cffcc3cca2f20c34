"""A stand-in sub-command whose optional dependency is missing (see test_cli.py)."""

import fastapi_extra_that_is_not_installed  # noqa: F401
