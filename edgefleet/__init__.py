"""edgefleet: the command line, the demo, the simulator and the local services (the roof over every part)."""
