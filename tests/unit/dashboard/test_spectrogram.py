"""The spectrogram core: bounded state, any feeding order gives the same image, the right frequency lights up,
and the PNG is valid (checked by a decoder written here from the PNG specification)."""

from __future__ import annotations

import itertools
import struct
import zlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dashboard.spectrogram import PALETTE, SpectrogramAccumulator, png_bytes, render


def read_png(data: bytes) -> tuple[int, int, npt.NDArray[np.uint8]]:
    """(width, height, pixels) of an 8-bit RGB PNG without filtering; checks the signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(tag + body), tag
        chunks.append((tag, body))
        pos += 12 + length
    assert next(t for t, _ in chunks) == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * 3)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return width, height, rows[:, 1:].reshape(height, width, 3)


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20), st.just(3))))
def test_png_round_trip(image: npt.NDArray[np.uint8]) -> None:
    width, height, pixels = read_png(png_bytes(image))
    assert (height, width) == image.shape[:2]
    assert np.array_equal(pixels, image)


@pytest.mark.parametrize("bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((2, 2, 3))])
def test_png_refuses_what_is_not_an_rgb_image(bad: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError):
        png_bytes(bad)  # type: ignore[arg-type]


def tone(freq: float, rate: int, seconds: float, channels: int = 1, bits: int = 16) -> npt.NDArray[np.int32]:
    t = np.arange(round(rate * seconds)) / rate
    wave = np.round(np.sin(2 * np.pi * freq * t) * (2 ** (bits - 1) - 1) * 0.5).astype(np.int32)
    return np.repeat(wave[:, None], channels, axis=1)


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=12))
@settings(max_examples=40, deadline=None)
def test_any_split_of_the_samples_gives_the_same_spectrogram(cuts: list[int]) -> None:
    samples = tone(440.0, 8000, 2.0, channels=2)
    whole = SpectrogramAccumulator(len(samples), 16, width=20, fft_size=256)
    whole.feed(samples)
    pieces = SpectrogramAccumulator(len(samples), 16, width=20, fft_size=256)
    bounds = sorted({min(c, len(samples)) for c in np.cumsum(cuts)} | {0, len(samples)})
    for a, b in itertools.pairwise(bounds):
        pieces.feed(samples[a:b])
        assert pieces.carried < 256
    assert np.allclose(whole.sums, pieces.sums)
    assert np.array_equal(whole.counts, pieces.counts)


@pytest.mark.parametrize(
    ("seconds", "width", "columns"),
    [(0.01, 100, 1), (1.0, 1000, 31), (1.0, 10, 10), (60.0, 64, 64)],  # 8000 Hz, fft 256: 31 windows a second
)
def test_the_width_is_fixed_and_every_column_gets_windows(seconds: float, width: int, columns: int) -> None:
    samples = tone(1000.0, 8000, seconds)
    acc = SpectrogramAccumulator(len(samples), 16, width=width, fft_size=256)
    for start in range(0, len(samples), 4096):  # as a decoder hands frames over
        acc.feed(samples[start : start + 4096])
    assert acc.columns == columns
    assert acc.sums.shape == (columns, 129)  # the state does not grow with the recording
    if len(samples) >= 256:
        assert acc.counts.min() >= 1
        assert acc.counts.sum() == len(samples) // 256


@pytest.mark.parametrize(("freq", "rate", "bits"), [(1000.0, 8000, 16), (5000.0, 48000, 24), (300.0, 16000, 8)])
def test_the_tone_lights_up_its_row(freq: float, rate: int, bits: int) -> None:
    samples = tone(freq, rate, 1.0, bits=bits)
    acc = SpectrogramAccumulator(len(samples), bits, width=4, fft_size=1024)
    acc.feed(samples)
    height = 128
    image = render(acc, height=height)
    assert image.shape == (height, 4, 3)
    assert image.dtype == np.uint8
    brightness = image.astype(int).sum(axis=2).mean(axis=1)  # per row, top row first
    brightest_from_bottom = height - 1 - int(np.argmax(brightness))
    expected = freq / (rate / 2) * height
    assert abs(brightest_from_bottom - expected) <= 2
    assert 10 * np.log10(acc.mean_power().max()) == pytest.approx(-6.0, abs=1.5)  # half of full scale


def test_silence_is_dark() -> None:
    acc = SpectrogramAccumulator(8000, 16, width=8, fft_size=256)
    acc.feed(np.zeros((8000, 1), dtype=np.int32))
    assert np.array_equal(np.unique(render(acc).reshape(-1, 3), axis=0), PALETTE[:1])


def test_floats_are_taken_as_they_are() -> None:
    ints = tone(500.0, 8000, 0.5)
    acc_int = SpectrogramAccumulator(len(ints), 16, width=4, fft_size=256)
    acc_int.feed(ints)
    acc_float = SpectrogramAccumulator(len(ints), 16, width=4, fft_size=256)
    acc_float.feed(ints / 32768.0, is_float=True)
    assert np.allclose(acc_int.sums, acc_float.sums)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"fft_size": 1000}, {"fft_size": 8}])
def test_bad_parameters_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SpectrogramAccumulator(1000, 16, **kwargs)
