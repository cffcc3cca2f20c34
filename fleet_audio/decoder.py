"""A pull-mode FLAC decoder on libFLAC (pyflac's compiled ``_decoder`` module) with our own cffi callbacks.

pyflac's own decoders cannot be used: their write callback refuses anything but 16/32-bit frames (our 8- and
24-bit objects) and the stream decoder runs a thread fed from a queue. Here libFLAC pulls bytes through a read
callback from any ``read(n)`` function (an S3 response, a file) in the calling thread, and hands each decoded
frame to ``on_frame`` as an int32 array of shape (samples, channels). libFLAC checks every frame CRC and, at the
end, the STREAMINFO MD5; any decoder error or mismatch raises RestoreError. The callbacks are created with
``ffi.callback`` (libffi closures), which needs no compiler at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from pyflac._decoder import ffi, lib

from fleet_audio.errors import RestoreError

Frame = npt.NDArray[np.int32]


class FlacDecoder:
    def __init__(self, read: Callable[[int], bytes], on_frame: Callable[[Frame], None]) -> None:
        self._read = read
        self._on_frame = on_frame
        self._failure: BaseException | None = None
        self._errors: list[str] = []
        self._decoder = ffi.gc(lib.FLAC__stream_decoder_new(), lib.FLAC__stream_decoder_delete)
        # Keep the callback objects alive as long as the decoder.
        self._callbacks = (
            ffi.callback(
                "FLAC__StreamDecoderReadCallback", self._on_read, error=lib.FLAC__STREAM_DECODER_READ_STATUS_ABORT
            ),
            ffi.callback(
                "FLAC__StreamDecoderWriteCallback", self._on_write, error=lib.FLAC__STREAM_DECODER_WRITE_STATUS_ABORT
            ),
            ffi.callback("FLAC__StreamDecoderErrorCallback", self._on_error),
        )
        lib.FLAC__stream_decoder_set_md5_checking(self._decoder, True)
        read_cb, write_cb, error_cb = self._callbacks
        status = lib.FLAC__stream_decoder_init_stream(
            self._decoder, read_cb, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, write_cb, ffi.NULL, error_cb, ffi.NULL
        )
        if status != lib.FLAC__STREAM_DECODER_INIT_STATUS_OK:
            raise RestoreError(
                f"libFLAC decoder init failed: {ffi.string(lib.FLAC__StreamDecoderInitStatusString[status])!r}"
            )

    def _on_read(self, _decoder: Any, buffer: Any, size_ptr: Any, _client: Any) -> int:
        try:
            data = self._read(int(size_ptr[0]))
        except BaseException as exc:  # network error etc.: abort libFLAC, re-raise after it returns
            self._failure = exc
            return int(lib.FLAC__STREAM_DECODER_READ_STATUS_ABORT)
        size_ptr[0] = len(data)
        if not data:
            return int(lib.FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM)
        ffi.memmove(buffer, data, len(data))
        return int(lib.FLAC__STREAM_DECODER_READ_STATUS_CONTINUE)

    def _on_write(self, _decoder: Any, frame: Any, buffer: Any, _client: Any) -> int:
        blocksize, channels = int(frame.header.blocksize), int(frame.header.channels)
        out = np.empty((blocksize, channels), dtype=np.int32)
        for ch in range(channels):
            out[:, ch] = np.frombuffer(ffi.buffer(buffer[ch], blocksize * 4), dtype=np.int32)
        try:
            self._on_frame(out)
        except BaseException as exc:
            self._failure = exc
            return int(lib.FLAC__STREAM_DECODER_WRITE_STATUS_ABORT)
        return int(lib.FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE)

    def _on_error(self, _decoder: Any, status: int, _client: Any) -> None:
        self._errors.append(ffi.string(lib.FLAC__StreamDecoderErrorStatusString[status]).decode())

    def run(self) -> None:
        """Decode to the end of the stream; raises RestoreError on any error or MD5 mismatch."""
        ok = lib.FLAC__stream_decoder_process_until_end_of_stream(self._decoder)
        state = ffi.string(lib.FLAC__StreamDecoderStateString[lib.FLAC__stream_decoder_get_state(self._decoder)])
        md5_ok = lib.FLAC__stream_decoder_finish(self._decoder)
        if self._failure is not None:
            raise self._failure
        if self._errors:
            raise RestoreError(f"FLAC stream is corrupt: {', '.join(sorted(set(self._errors)))}")
        if not ok:
            raise RestoreError(f"FLAC decoding failed ({state.decode()})")
        if not md5_ok:
            raise RestoreError("decoded audio does not match the STREAMINFO MD5")
