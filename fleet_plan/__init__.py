"""Pure planning shared by the controller's policy and the agent's own guard (docs/architecture.md).

What both sides must decide the same way lives here once: the thermal steps, the compression cost model, the
memory fit. No I/O, no clock: callers pass measurements and ``now`` in. Imports only ``fleet_protocol``.
Always import from the defining module (``fleet_plan.thermal`` ...), never from this package.
"""
