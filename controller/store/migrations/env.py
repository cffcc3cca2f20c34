"""Alembic's environment: ``controller.store.schema`` runs it with an open connection (no alembic.ini, no URL)."""

from alembic import context

from controller.store.schema import run_migrations

run_migrations(context)
