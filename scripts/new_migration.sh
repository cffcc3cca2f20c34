#!/usr/bin/env bash
# Write the next Alembic revision of the controller's database (controller/store/migrations/versions/NNNN_*.py)
# from what the SQLModel tables (controller/store/models.py) have and the migrations do not yet make: the
# migrations run on a scratch SQLite database, autogenerate compares it with the models. Review the file
# (autogenerate sees a renamed column as drop + add, and never fills new NOT NULL columns of existing rows:
# give them a server_default), then test it: tests/integration/controller/test_migrations.py.
# Usage: scripts/new_migration.sh "agent firmware version"
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: scripts/new_migration.sh \"what the revision changes\"" >&2
  exit 2
fi
exec "${PYTHON:-.venv/bin/python}" -m controller.store.schema new "$1"
