"""The agent service (``edgefleet agent --config FILE``): spool folder → upload engine, MQTT to the controller.

See docs/agent.md. ``agent.AgentService`` is the single-threaded core; ``runtime.AgentRuntime`` wires it to
its MQTT link and engine; ``main`` is the composition root of the command.
"""
