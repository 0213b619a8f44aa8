"""The JSONL writer thread: writes arrive in order, and a failed write is not lost."""

from __future__ import annotations

import io

import pytest

from evalhub.exports.background import BackgroundWriter


def test_background_writes_arrive_in_order_before_close_returns():
    sink = io.BytesIO()
    writer = BackgroundWriter(sink, ahead=1)
    for index in range(200):
        writer.write(memoryview(f"{index},".encode()))
    writer.close()
    assert sink.getvalue() == "".join(f"{index}," for index in range(200)).encode()


class FullDisk(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        raise OSError("No space left on device")


def test_a_failed_background_write_is_raised_in_the_callers_thread():
    writer = BackgroundWriter(FullDisk())
    writer.write(b"line\n")
    with pytest.raises(OSError, match="No space left"):
        for _ in range(100):  # raised by a later write, or else by close
            writer.write(b"line\n")
        writer.close()
    writer.close()  # raised once; closing again is harmless
