"""Simulated Raspberry Pi agents for ``edgefleet simulate`` and the demo.

- :mod:`.thermal`  - pure thermal model with the Pi firmware's throttle bits
- :mod:`.profiles` - hardware profiles and how upload work turns into CPU load
- :mod:`.engine`   - a simulated upload engine (backlog, throughput, events) behind the agent's EnginePort
- :mod:`.host`     - a simulated host (temperature, throttling, CPU, memory) behind the agent's HostProbe
- :mod:`.audio`    - realistic field-recording WAVs for ``--upload``
- :mod:`.fleet`    - N simulated agents, each a real ``AgentRuntime`` speaking real MQTT
"""
