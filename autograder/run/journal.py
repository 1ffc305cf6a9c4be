"""The grading run's journal: which submissions are recorded, so a run killed midway resumes.

One JSON line per recorded task, appended and fsynced only after the caller has recorded the
result (gradebook, feedback, CSV lines), keyed by (task key, content hash):

    {"key": "alice", "digest": "3f2a...", "status": "done", "at": "2026-11-30T10:02:03"}

A task whose (key, digest) has a "done" line is not graded again; a failure ("failed") is
retried by the next run. The file is locked while a run uses it, so two clients never grade
into one workspace at once; the lock goes with the process, even when it is killed.
"""
import fcntl
import json
import os
from datetime import datetime
from pathlib import Path


class JournalError(RuntimeError):
    """The journal cannot be used (in use by another run, or damaged)."""


class Journal:
    """Append-only record of what a run recorded; `done` is the set of (key, digest) not to redo."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+b")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise JournalError(f"{self.path} is in use by another grading run: wait for it to end, "
                               "or grade into another workspace") from None
        try:
            self.done = self._read()
        except JournalError:
            self.file.close()
            raise

    def _read(self):
        self.file.seek(0)
        text = self.file.read()
        complete = text[:text.rfind(b"\n") + 1]
        if len(complete) < len(text):  # the last line was cut short when a run was killed: it never counted
            self.file.truncate(len(complete))
        done = set()
        for number, line in enumerate(complete.decode().splitlines(), 1):
            try:
                entry = json.loads(line)
                if entry["status"] == "done":
                    done.add((entry["key"], entry["digest"]))
            except (ValueError, KeyError, TypeError):
                raise JournalError(f"{self.path}, line {number}, is damaged ({line[:80]!r}): delete that line "
                                   "(its submission is graded again) or the file (all are)") from None
        return done

    def append(self, key, digest, ok):
        """Record one task, durably, before the next one is taken."""
        entry = {"key": key, "digest": digest, "status": "done" if ok else "failed",
                 "at": datetime.now().isoformat(timespec="seconds")}
        self.file.write((json.dumps(entry) + "\n").encode())
        self.file.flush()
        os.fsync(self.file.fileno())
        if ok:
            self.done.add((key, digest))

    def close(self):
        self.file.close()  # releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
