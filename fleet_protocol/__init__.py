"""The edgefleet wire protocol, shared by every part (``docs/protocol.md``).

Import each name from the module that defines it; this package file loads nothing, so the pydantic-free
modules stay pydantic-free for the Pi's upload path (``tests/unit/fleet_protocol/test_import_cost.py``):

- ``vocabulary``: ``AgentStatus``, ``EventKind`` (plain enums), the firmware throttle bits;
- ``topics``: ``NAMESPACE``, ``AgentChannel``, ``AgentTopic``, ``agent_topic``, ``agent_filter``, ids;
- ``errors``: ``ProtocolError``, ``TopicError``, ``PayloadError``;
- ``assignment``: ``AssignmentSettings``, the one frozen value of an assignment's settings, and their bounds
  (``MIN_PART_SIZE``...);
- ``windows``: the upload-window grammar and its one parser; ``numbers``: the protocol's number bounds;
- ``messages``: one pydantic model per message, their limits (``MAX_PAYLOAD_BYTES``...);
- ``codec``: ``encode``, ``decode``, ``decode_controller_state``;
- ``bounds``: fitting measured values into the messages' bounds; ``schemas``: the JSON Schema snapshots.
"""
