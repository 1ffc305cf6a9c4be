"""Bounded pipes: what a sandboxed process writes to its stdout/stderr, drained without limit, kept with one.

A sandboxed process never gets a host file as stdout or stderr (a student's code could fill the
grader's log, or the disk): it gets a pipe, which a BoundedDrain thread reads as fast as it is
written, so the writer never blocks. The drain keeps the first and the last `keep_bytes` for
diagnostics and counts the rest, which it discards; it may echo the first part as it arrives.
"""
import threading
from collections import deque

KEEP_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024


class BoundedDrain(threading.Thread):
    """Reads `pipe` (a binary file object) to its end; keeps `head` and `tail`, `keep_bytes` each."""

    def __init__(self, pipe, name, keep_bytes=KEEP_BYTES, echo=None):
        super().__init__(daemon=True, name=f"drain-{name}")
        self.pipe, self.stream_name, self.keep_bytes, self.echo = pipe, name, keep_bytes, echo
        self.head, self._tail, self._tail_bytes = bytearray(), deque(), 0
        self.total_bytes = 0

    def run(self):
        with self.pipe:
            while chunk := self.pipe.read1(CHUNK_BYTES):
                self.total_bytes += len(chunk)
                room = self.keep_bytes - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    self._echo(chunk[:room])
                    chunk = chunk[room:]
                if chunk:
                    self._keep_tail(chunk)

    def _echo(self, data):
        if self.echo is not None and data:
            try:
                self.echo.write(data)
                self.echo.flush()
            except (OSError, ValueError):
                self.echo = None  # the echo target went away: keep draining all the same

    def _keep_tail(self, chunk):
        self._tail.append(chunk)
        self._tail_bytes += len(chunk)
        while self._tail_bytes - len(self._tail[0]) >= self.keep_bytes:
            self._tail_bytes -= len(self._tail.popleft())

    @property
    def tail(self):
        """The last bytes after the head, at most keep_bytes."""
        return bytes(b"".join(self._tail)[-self.keep_bytes:])

    @property
    def discarded_bytes(self):
        return self.total_bytes - len(self.head) - len(self.tail)

    def kept(self):
        """Head and tail as one bytes, with a line saying how much was left out between them."""
        if not self.discarded_bytes:
            return bytes(self.head) + self.tail
        return (bytes(self.head) + f"\n[... {self.discarded_bytes} bytes of {self.stream_name} left out ...]\n".encode()
                + self.tail)
