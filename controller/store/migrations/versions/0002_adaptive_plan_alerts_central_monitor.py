"""adaptive plan, alerts, central monitor: the agent's encode rates, memory, drain time and own latency and
resources (columns, filled with their defaults on existing rows); the alert, its webhook outbox and the central
node's samples (tables).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 17:09:46.051544
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("alertname", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("alert_pkey")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_resolved_at", ["resolved_at"], unique=False)
        batch_op.create_index(
            "uq_alert_active",
            ["fingerprint"],
            unique=True,
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )

    op.create_table(
        "alert_notification",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("webhook", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("alert_notification_pkey")),
    )
    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.create_index("ix_alert_notification_due", ["delivered_at", "next_attempt_at"], unique=False)

    op.create_table(
        "central_sample",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("controller_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("span_s", sa.Float(), nullable=False),
        sa.Column("downsampled", sa.Boolean(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("mem_used_percent", sa.Float(), nullable=False),
        sa.Column("mem_available_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_free_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_used_percent", sa.Float(), nullable=False),
        sa.Column("disk_read_bps", sa.Float(), nullable=True),
        sa.Column("disk_write_bps", sa.Float(), nullable=True),
        sa.Column("net_sent_bps", sa.Float(), nullable=True),
        sa.Column("net_recv_bps", sa.Float(), nullable=True),
        sa.Column("broker_connected", sa.Boolean(), nullable=True),
        sa.Column("broker_clients", sa.Integer(), nullable=True),
        sa.Column("broker_msgs_received_per_s", sa.Float(), nullable=True),
        sa.Column("broker_msgs_sent_per_s", sa.Float(), nullable=True),
        sa.Column("broker_msgs_dropped_per_s", sa.Float(), nullable=True),
        sa.Column("broker_dropped_total", sa.BigInteger(), nullable=True),
        sa.Column("broker_retained", sa.BigInteger(), nullable=True),
        sa.Column("s3_probes", sa.Integer(), nullable=False),
        sa.Column("s3_probe_errors", sa.Integer(), nullable=False),
        sa.Column("s3_probe_latency_s", sa.Float(), nullable=True),
        sa.Column("s3_probe_error", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("central_sample_pkey")),
    )
    with op.batch_alter_table("central_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_central_sample_at"), ["at"], unique=False)
        batch_op.create_index("ix_central_sample_controller_at", ["controller_id", "at"], unique=False)

    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encode_cores", sa.Float(), server_default=sa.text("(0.0)"), nullable=False))
        batch_op.add_column(
            sa.Column("memory_limit_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("baseline_rss_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("encode_bps_by_level", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(
            sa.Column("compression_ratio_by_level", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(sa.Column("mqtt_rtt_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("s3_ttfb_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("process_cpu_percent", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("process_rss_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("backlog_eta_s", sa.Float(), nullable=True))

    with op.batch_alter_table("telemetry_sample", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mqtt_rtt_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("s3_ttfb_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("process_cpu_percent", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("process_rss_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetry_sample", schema=None) as batch_op:
        batch_op.drop_column("process_rss_bytes")
        batch_op.drop_column("process_cpu_percent")
        batch_op.drop_column("s3_ttfb_s")
        batch_op.drop_column("mqtt_rtt_s")

    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("backlog_eta_s")
        batch_op.drop_column("process_rss_bytes")
        batch_op.drop_column("process_cpu_percent")
        batch_op.drop_column("s3_ttfb_s")
        batch_op.drop_column("mqtt_rtt_s")
        batch_op.drop_column("compression_ratio_by_level")
        batch_op.drop_column("encode_bps_by_level")
        batch_op.drop_column("baseline_rss_bytes")
        batch_op.drop_column("memory_limit_bytes")
        batch_op.drop_column("encode_cores")

    with op.batch_alter_table("central_sample", schema=None) as batch_op:
        batch_op.drop_index("ix_central_sample_controller_at")
        batch_op.drop_index(batch_op.f("ix_central_sample_at"))

    op.drop_table("central_sample")
    with op.batch_alter_table("alert_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_notification_due")

    op.drop_table("alert_notification")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alert_active",
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )
        batch_op.drop_index("ix_alert_resolved_at")

    op.drop_table("alert")
