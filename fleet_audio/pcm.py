"""Little-endian WAV PCM bytes <-> integer sample arrays (pure numpy, no I/O).

WAV 8-bit samples are unsigned (offset 128), 16- and 24-bit are signed two's complement. FLAC wants signed
samples in int32 (pyflac casts to int32 anyway), so 8-bit is shifted to signed and 24-bit sign-extended.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int32] | npt.NDArray[np.int16]


def to_samples(buf: bytes, width: int, channels: int) -> Samples:
    """Interleaved PCM bytes (whole frames) -> array of shape (frames, channels)."""
    if width == 2:
        return np.frombuffer(buf, dtype="<i2").reshape(-1, channels)
    if width == 1:
        return (np.frombuffer(buf, dtype=np.uint8).astype(np.int16) - 128).reshape(-1, channels)
    if width == 3:
        triples = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((len(triples), 4), dtype=np.uint8)
        wide[:, 1:] = triples
        return (wide.view("<i4")[:, 0] >> 8).reshape(-1, channels)
    raise ValueError(f"unsupported sample width {width}")


def to_bytes(interleaved: npt.NDArray[np.int32], width: int) -> bytes:
    """Signed int32 samples (any shape, C order) -> little-endian WAV PCM bytes of the given width."""
    if width == 2:
        return interleaved.astype("<i2").tobytes()
    if width == 1:
        return (interleaved + 128).astype(np.uint8).tobytes()
    if width == 3:
        return np.ascontiguousarray(interleaved, dtype="<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    raise ValueError(f"unsupported sample width {width}")
