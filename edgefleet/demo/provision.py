"""Provisioning, as the Ansible roles do it in production: one broker user and one S3 identity per agent (its own
topics, its own ``{prefix}/{agent id}/`` objects), and the controller's own of both (its topics; listing and
aborting stale multipart uploads), plus its central monitor's ($SYS only; small objects under ``_probe/``), its
recordings catalog's (reads objects) and the dashboard's broker user (queue control: requests to any agent, only its
own replies). Done
before the broker and the S3 server start."""

from __future__ import annotations

from collections.abc import Iterable

from edgefleet.demo.layout import (
    CATALOG,
    CENTRAL_MONITOR,
    CENTRAL_PROBE,
    CONTROLLER,
    DASHBOARD_MQTT,
    OBJECT_PREFIX,
    DemoState,
)
from edgefleet.localservices import Mosquitto, SeaweedS3
from edgefleet.localservices.seaweed import PROBE_PREFIX


def provision(
    state: DemoState, broker: Mosquitto, s3: SeaweedS3, agent_ids: Iterable[str], prefix: str = OBJECT_PREFIX
) -> None:
    broker.add_user(CONTROLLER, state.mqtt_controller_password, role="controller")
    s3.add_janitor_identity(CONTROLLER, *state.s3_key(CONTROLLER))
    broker.add_user(CENTRAL_MONITOR, state.agent_password(CENTRAL_MONITOR), role="monitor")
    s3.add_probe_identity(CENTRAL_PROBE, PROBE_PREFIX, *state.s3_key(CENTRAL_PROBE))
    s3.add_catalog_identity(CATALOG, *state.s3_key(CATALOG))
    broker.add_user(DASHBOARD_MQTT, state.agent_password(DASHBOARD_MQTT), role="dashboard")
    for agent_id in agent_ids:
        broker.add_user(agent_id, state.agent_password(agent_id))
        s3.add_agent_identity(agent_id, prefix, *state.s3_key(agent_id))
