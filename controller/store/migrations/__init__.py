"""The Alembic migrations of the controller's database (run through ``controller.store.schema``)."""
