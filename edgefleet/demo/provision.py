"""Provisioning, as the Ansible roles do it in production: one broker user and one S3 identity per agent (its own
topics, its own ``{prefix}/{agent id}/`` objects), and the controller's own of both (its topics; listing and
aborting stale multipart uploads). Done before the broker and the S3 server start."""

from __future__ import annotations

from collections.abc import Iterable

from edgefleet.demo.layout import CONTROLLER, OBJECT_PREFIX, DemoState
from edgefleet.localservices import Mosquitto, SeaweedS3


def provision(
    state: DemoState, broker: Mosquitto, s3: SeaweedS3, agent_ids: Iterable[str], prefix: str = OBJECT_PREFIX
) -> None:
    broker.add_user(CONTROLLER, state.mqtt_controller_password, role="controller")
    s3.add_janitor_identity(CONTROLLER, *state.s3_key(CONTROLLER))
    for agent_id in agent_ids:
        broker.add_user(agent_id, state.agent_password(agent_id))
        s3.add_agent_identity(agent_id, prefix, *state.s3_key(agent_id))
