"""The controller's SQL store: the tables (``models``), the ``database``, agent writes, housekeeping, assignments
and the reads and operator writes (``repo``)."""
