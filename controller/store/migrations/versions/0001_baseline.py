"""Baseline: the schema of the last release without migrations (commit 417487d), on SQLite and PostgreSQL.

A database that release made (create_all at start, plus its ``agent.reported_site`` column and event dedup
indexes) is stamped with this revision instead of running it (``controller.store.schema.migrate``).

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("cores", sa.Integer(), nullable=False),
        sa.Column("ram_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_bytes", sa.BigInteger(), nullable=False),
        sa.Column("software_version", sa.String(length=128), nullable=False),
        sa.Column("flac_encode_bps", sa.Float(), nullable=False),
        sa.Column("bucket", sa.String(length=256), nullable=False),
        sa.Column("prefix", sa.String(length=256), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=False),
        sa.Column("reported_site", sa.String(length=128), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("online_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offline_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("backlog_files", sa.Integer(), nullable=False),
        sa.Column("backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("throughput_bps", sa.Float(), nullable=False),
        sa.Column("active_uploads", sa.Integer(), nullable=False),
        sa.Column("assignment_version", sa.BigInteger(), nullable=False),
        sa.Column("mem_available_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_free_bytes", sa.BigInteger(), nullable=False),
        sa.Column("backlog_oldest_age_s", sa.Float(), nullable=False),
        sa.Column("bytes_uploaded_total", sa.BigInteger(), nullable=False),
        sa.Column("retries_total", sa.BigInteger(), nullable=False),
        sa.Column("errors_total", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("birth_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telemetry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telemetry_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("agent_pkey")),
    )
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_site"), ["site"], unique=False)

    op.create_table(
        "assignment_history",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.Column("bandwidth_bps", sa.BigInteger(), nullable=False),
        sa.Column("compression_level", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("upload_now", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("controller_id", sa.String(length=128), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("assignment_history_pkey")),
        sa.UniqueConstraint("agent_id", "version", name="uq_assignment_agent_version"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_entry_pkey")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)

    op.create_table(
        "controller_instance",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("controller_instance_pkey")),
    )
    op.create_table(
        "current_assignment",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.Column("bandwidth_bps", sa.BigInteger(), nullable=False),
        sa.Column("compression_level", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("upload_now", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("controller_id", sa.String(length=128), nullable=False),
        sa.Column("thermal_level", sa.Integer(), nullable=False),
        sa.Column("cool_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_widened", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("current_assignment_pkey")),
    )
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=96), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("controller_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("dead_letter_pkey")),
    )
    op.create_table(
        "ingest_reject",
        sa.Column("kind", sa.String(length=96), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("last_topic", sa.String(length=512), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("ingest_reject_pkey")),
    )
    op.create_table(
        "operator_override",
        sa.Column("paused", sa.Boolean(), nullable=True),
        sa.Column("windows", sa.JSON(), nullable=True),
        sa.Column("concurrency_cap", sa.Integer(), nullable=True),
        sa.Column("bandwidth_cap_bps", sa.BigInteger(), nullable=True),
        sa.Column("upload_now", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("operator_override_pkey")),
        sa.UniqueConstraint("scope", "target", name="uq_override_scope_target"),
    )
    op.create_table(
        "telemetry_sample",
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("backlog_files", sa.Integer(), nullable=False),
        sa.Column("backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("throughput_bps", sa.Float(), nullable=False),
        sa.Column("active_uploads", sa.Integer(), nullable=False),
        sa.Column("assignment_version", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("telemetry_sample_pkey")),
    )
    with op.batch_alter_table("telemetry_sample", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_agent_at", ["agent_id", "at"], unique=False)

    op.create_table(
        "upload_event",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("file", sa.String(length=1024), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_as", sa.String(length=8), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("upload_event_pkey")),
    )
    with op.batch_alter_table("upload_event", schema=None) as batch_op:
        batch_op.create_index("ix_upload_event_agent_at", ["agent_id", "at"], unique=False)
        batch_op.create_index("ix_upload_event_at", ["at"], unique=False)
        batch_op.create_index(
            "uq_upload_event_completed",
            ["agent_id", "key", "sha256"],
            unique=True,
            sqlite_where=sa.text("kind = 'upload_completed'"),
            postgresql_where=sa.text("kind = 'upload_completed'"),
        )
        batch_op.create_index("uq_upload_event_message", ["agent_id", "at", "seq", "kind"], unique=True)


def downgrade() -> None:
    op.drop_table("upload_event")
    op.drop_table("telemetry_sample")
    op.drop_table("operator_override")
    op.drop_table("ingest_reject")
    op.drop_table("dead_letter")
    op.drop_table("current_assignment")
    op.drop_table("controller_instance")
    op.drop_table("audit_entry")
    op.drop_table("assignment_history")
    op.drop_table("agent")
