"""Real services on free local ports for the tests and ``edgefleet demo``: Mosquitto, SeaweedFS S3, PostgreSQL.

Each runner owns a private directory, picks free ports, waits for readiness, and always stops what it
started (``with Runner(...) as r:``). Nothing here is a mock: these are the real servers.
"""

from edgefleet.localservices.mosquitto import Mosquitto, MqttUser
from edgefleet.localservices.postgres import Postgres
from edgefleet.localservices.process import ServiceError
from edgefleet.localservices.seaweed import SeaweedS3

__all__ = ["Mosquitto", "MqttUser", "Postgres", "SeaweedS3", "ServiceError"]
