"""BoundedDrain keeps the first and the last bytes of a pipe and drains the rest without blocking its writer."""
import io
import os
import threading

from autograder.isolation.pipes import BoundedDrain


def drained(data, keep_bytes, chunk=4096):
    read, write = os.pipe()
    echo = io.BytesIO()
    drain = BoundedDrain(os.fdopen(read, "rb"), "stderr", keep_bytes, echo=echo)
    drain.start()
    with os.fdopen(write, "wb") as pipe:
        for start in range(0, len(data), chunk):
            pipe.write(data[start:start + chunk])
    drain.join(10)
    assert not drain.is_alive()
    return drain, echo.getvalue()


def test_short_output_is_kept_whole():
    drain, echoed = drained(b"hello\n", keep_bytes=100)
    assert drain.kept() == b"hello\n" and echoed == b"hello\n" and drain.discarded_bytes == 0


def test_long_output_keeps_head_and_tail_and_says_what_it_left_out():
    data = bytes(range(256)) * 4000  # 1 MB
    drain, echoed = drained(data, keep_bytes=1000, chunk=777)
    assert drain.total_bytes == len(data)
    assert bytes(drain.head) == data[:1000] == echoed
    assert drain.tail == data[-1000:]
    assert drain.discarded_bytes == len(data) - 2000
    assert f"[... {len(data) - 2000} bytes of stderr left out ...]".encode() in drain.kept()


def test_the_writer_never_waits_for_a_slow_reader():
    """100 MB go through although only 2 x 64 KB are kept, and the writer finishes."""
    read, write = os.pipe()
    drain = BoundedDrain(os.fdopen(read, "rb"), "stdout")
    drain.start()
    chunk = b"x" * (1 << 20)
    writer = threading.Thread(target=lambda: [os.write(write, chunk) for _ in range(100)])
    writer.start()
    writer.join(60)
    assert not writer.is_alive()
    os.close(write)
    drain.join(10)
    assert drain.total_bytes == 100 << 20 and len(drain.kept()) < 3 * 64 * 1024
