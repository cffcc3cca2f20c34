"""A recording's spectrogram as a PNG, from decoded samples fed in any pieces (pure: numpy, zlib, struct).

``SpectrogramAccumulator`` takes the samples as they are decoded (int arrays of shape (frames, channels), any
size) and keeps only a fixed amount of state: one row of summed power per output column (``columns`` ×
``fft_size/2 + 1`` floats) and fewer than ``fft_size`` carried samples. The channels are averaged to mono; the
samples are cut into non-overlapping Hann windows of ``fft_size``; each window's power spectrum is added to the
column its start falls in (a column of a long recording averages many windows, a short recording gets one
column per window, at most ``width``). So memory does not grow with the recording's length.

``render`` turns the accumulated powers into an RGB image (low frequencies at the bottom, decibels relative to
the loudest cell over ``dynamic_range_db`` but never above ``FLOOR_DB`` + that range, so silence is dark; a
fixed palette) and ``png_bytes`` writes it as a PNG (8-bit RGB,
no filtering, one zlib stream).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_FFT", "DEFAULT_HEIGHT", "DEFAULT_WIDTH", "SpectrogramAccumulator", "png_bytes", "render"]

DEFAULT_WIDTH = 1024
DEFAULT_HEIGHT = 256
DEFAULT_FFT = 1024
DEFAULT_DYNAMIC_RANGE_DB = 90.0
#: the quietest level the image can show at all: silence stays dark instead of being scaled up to bright
FLOOR_DB = -160.0
_TINY = 1e-20

Image = npt.NDArray[np.uint8]
# Dark blue through purple, red and orange to pale yellow: quiet is dark, loud is bright.
_ANCHORS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 255, 164]],
    dtype=np.float64,
)  # fmt: skip


def _palette() -> Image:
    positions = np.linspace(0.0, 1.0, len(_ANCHORS))
    levels = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(levels, positions, _ANCHORS[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


PALETTE = _palette()


class SpectrogramAccumulator:
    """Power spectra summed per output column; feed samples in order, in pieces of any size."""

    def __init__(
        self, total_frames: int, bits_per_sample: int, *, width: int = DEFAULT_WIDTH, fft_size: int = DEFAULT_FFT
    ) -> None:
        if width < 1 or fft_size < 16 or fft_size & (fft_size - 1):
            raise ValueError(f"width must be >= 1 and fft_size a power of two >= 16, got {width}, {fft_size}")
        if bits_per_sample < 1:
            raise ValueError(f"bits_per_sample must be >= 1, got {bits_per_sample}")
        self.total_frames = max(total_frames, fft_size)
        self.fft_size = fft_size
        self.windows = self.total_frames // fft_size  # whole windows the recording holds (at least 1)
        self.columns = min(width, self.windows)
        self.sums = np.zeros((self.columns, fft_size // 2 + 1), dtype=np.float64)
        self.counts = np.zeros(self.columns, dtype=np.int64)
        self._scale = float(2 ** (bits_per_sample - 1))
        self._window = np.hanning(fft_size)
        # (2/sum(w))^2: a full-scale sine peaks near 0 dB
        self._norm = (2.0 / float(self._window.sum())) ** 2
        self._carry = np.zeros(0, dtype=np.float64)
        self._position = 0  # frame index of _carry[0]

    @property
    def carried(self) -> int:
        """Samples held for the next window (always fewer than ``fft_size``)."""
        return len(self._carry)

    def feed(self, frames: npt.NDArray[np.integer] | npt.NDArray[np.floating], *, is_float: bool = False) -> None:
        """``frames``: shape (n, channels), integers of ``bits_per_sample`` (or floats in [-1, 1] if
        ``is_float``)."""
        if frames.ndim != 2 or frames.shape[0] == 0:
            return
        mono = frames.mean(axis=1, dtype=np.float64)
        if not is_float:
            mono /= self._scale
        buffer = np.concatenate((self._carry, mono)) if len(self._carry) else mono
        n = self.fft_size
        whole = len(buffer) // n
        if whole:
            windows = buffer[: whole * n].reshape(whole, n) * self._window
            power = np.abs(np.fft.rfft(windows, axis=1)) ** 2 * self._norm
            index = self._position // n + np.arange(whole, dtype=np.int64)
            columns = np.minimum(index * self.columns // self.windows, self.columns - 1)
            np.add.at(self.sums, columns, power)
            np.add.at(self.counts, columns, 1)
        self._carry = buffer[whole * n :].copy()
        self._position += whole * n

    def mean_power(self) -> npt.NDArray[np.float64]:
        """(columns, bins) mean power per column; a column no window reached is 0."""
        return self.sums / np.maximum(self.counts, 1)[:, None]


def _rows(values: npt.NDArray[np.float64], height: int) -> npt.NDArray[np.float64]:
    """(columns, bins) → (columns, height): each row the loudest of its bins (a bin repeats if bins < height)."""
    bins = values.shape[1]
    starts = np.minimum((np.arange(height) * bins) // height, bins - 1)
    return np.maximum.reduceat(values, starts, axis=1)


def render(
    acc: SpectrogramAccumulator, *, height: int = DEFAULT_HEIGHT, dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB
) -> Image:
    """The spectrogram as an RGB image of shape (height, columns, 3): time left to right, frequency bottom up."""
    if height < 1 or dynamic_range_db <= 0:
        raise ValueError("height must be >= 1 and dynamic_range_db > 0")
    db = 10.0 * np.log10(_rows(acc.mean_power(), height) + _TINY)
    top = max(float(db.max()), FLOOR_DB + dynamic_range_db)
    level = np.clip((db - (top - dynamic_range_db)) / dynamic_range_db, 0.0, 1.0)
    indices = np.round(level * 255).astype(np.uint8)
    return np.ascontiguousarray(PALETTE[indices.T[::-1]])


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(image: Image) -> bytes:
    """An (height, width, 3) uint8 RGB image as PNG file bytes."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"need a non-empty (height, width, 3) uint8 image, got {image.shape} {image.dtype}")
    height, width, _ = image.shape
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # filter byte 0 (None) before every row
    rows[:, 1:] = image.reshape(height, width * 3)
    # 8-bit samples, truecolour, deflate, no filtering, no interlacing
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
