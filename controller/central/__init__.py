"""The central node monitor: host (psutil), broker ($SYS) and object store (active probe) figures."""
