"""edgefleet: the command line and the local services shared by the demo and the tests."""

__version__ = "0.1.0"
