"""The ground floor every edgefleet service stands on, below the agent and the central side.

What both stacks need and is not the wire protocol (that is ``fleet_protocol``):

- ``configfile``: the rules of every service's TOML config (unknown keys are errors, environment overrides);
- ``s3settings``: the S3 connection settings (endpoint, keys, bucket, TLS trust) and their minio client;
- ``mqtt_url`` and ``paho``: the MQTT connection URL and the paho client built from it;
- ``__version__``: the software version (agents report it in their birth message; ``edgefleet --version``).

Nothing here imports the agent, the central services or the command line (``docs/architecture.md``). The
submodules are imported one by one, so a Pi's upload path loads neither pydantic nor paho.
"""

__version__ = "0.2.0"
