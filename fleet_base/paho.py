"""A paho-mqtt client set up from an ``MqttUrl`` the same way everywhere: MQTT v5, credentials, TLS (the URL's
``cafile`` / ``certfile`` / ``keyfile``).

paho is imported here, not at package level: the protocol models need only pydantic.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from fleet_base.mqtt_url import MqttUrl

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt


def paho_client(url: MqttUrl, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if url.username:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        # cafile None: the system's trusted CAs; the broker's host name is always checked
        client.tls_set(ca_certs=url.cafile, certfile=url.certfile, keyfile=url.keyfile, cert_reqs=ssl.CERT_REQUIRED)
    return client
