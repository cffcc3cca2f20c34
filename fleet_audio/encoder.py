"""libFLAC (through pyflac's StreamEncoder) as a pure frame producer: samples in, frame bytes out.

pyflac facts this relies on (checked on pyflac 3.0 / libFLAC 1.4):
- the bit depth is taken from the numpy dtype on the first ``process`` call unless the encoder is initialised
  first: we set channels and bits ourselves and call ``_init()``, so 24-bit stays 24-bit (not 32) and 8-bit is 8;
- the stream header it writes (writes with ``num_samples == 0``) is dropped: the object gets our own header;
- with no seek callback STREAMINFO is never rewritten, but the metadata callback receives the final one
  (sample count, MD5, frame sizes) at ``finish()``;
- output is byte-identical for the same samples and settings whatever the feed sizes (resume depends on it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyflac import StreamEncoder

from fleet_audio.flacmeta import StreamInfo


class EncoderError(RuntimeError):
    """libFLAC refused to initialise or to encode."""


class FrameEncoder:
    def __init__(self, sample_rate: int, channels: int, bits_per_sample: int, compression_level: int) -> None:
        self._frames: list[bytes] = []
        self._info: StreamInfo | None = None
        self._finished = False
        self._encoder = StreamEncoder(
            sample_rate=sample_rate,
            write_callback=self._on_write,
            metadata_callback=self._on_metadata,
            compression_level=compression_level,
        )
        self._encoder._channels = channels
        self._encoder._bits_per_sample = bits_per_sample
        try:
            self._encoder._init()
        except Exception as exc:  # pyflac raises EncoderInitException
            raise EncoderError(f"libFLAC init failed: {exc}") from exc

    def _on_write(self, buffer: bytes, num_bytes: int, num_samples: int, current_frame: int) -> None:
        if num_samples:  # 0 = pyflac's own stream header, replaced by ours
            self._frames.append(buffer)

    def _on_metadata(self, metadata: Any) -> None:
        if metadata.type != 0:
            return
        si = metadata.data.stream_info
        self._info = StreamInfo(
            int(si.min_blocksize),
            int(si.max_blocksize),
            int(si.min_framesize),
            int(si.max_framesize),
            int(si.sample_rate),
            int(si.channels),
            int(si.bits_per_sample),
            int(si.total_samples),
            bytes(si.md5sum),
        )

    def _take(self) -> bytes:
        out = b"".join(self._frames)
        self._frames.clear()
        return out

    def encode(self, samples: np.ndarray) -> bytes:
        """Encode (frames, channels) samples; returns the frame bytes completed so far (maybe empty)."""
        try:
            self._encoder.process(samples)
        except Exception as exc:
            raise EncoderError(f"libFLAC encode failed: {exc}") from exc
        return self._take()

    def close(self) -> None:
        """Finish an encoder that is abandoned (idempotent). libFLAC's delete would otherwise finish it from the
        garbage collector and call back into a half-collected Python object."""
        if not self._finished:
            self._finished = True
            self._encoder.finish()
            self._frames.clear()

    def finish(self) -> tuple[bytes, StreamInfo]:
        """Flush the last frames; returns them and the final STREAMINFO."""
        self._finished = True
        if not self._encoder.finish():
            raise EncoderError(f"libFLAC finish failed: {self._encoder.state}")
        if self._info is None:
            raise EncoderError("libFLAC gave no STREAMINFO")
        return self._take(), self._info
