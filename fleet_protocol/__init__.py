"""The edgefleet wire protocol, shared by every part (``docs/protocol.md``).

Import each name from the module that defines it; this package file loads nothing, so the pydantic-free
modules stay pydantic-free for the Pi's upload path (``tests/unit/fleet_protocol/test_import_cost.py``):

- ``vocabulary``: ``AgentStatus``, ``EventKind`` (plain enums);
- ``topics``: ``NAMESPACE``, ``AgentChannel``, ``AgentTopic``, ``agent_topic``, ``agent_filter``, ids;
- ``errors``: ``ProtocolError``, ``TopicError``, ``PayloadError``;
- ``messages``: one pydantic model per message, their limits (``MIN_PART_SIZE``, ``MAX_PAYLOAD_BYTES``...);
- ``codec``: ``encode``, ``decode``, ``decode_controller_state``;
- ``bounds``: fitting measured values into the messages' bounds; ``schemas``: the JSON Schema snapshots.
"""
