"""The grader's side of the probe process: start it in the sandbox, ask it for data, bound its time.

    process = ProbeProcess(environment)                       # sandboxed when it says CGAN_SANDBOX_UID
    report = process.load(prelude, cells, timeout)            # the student's definitions, loaded there
    with process.session(deadline) as session:                # one forked child: one test's requests
        data = session.call("module_run", "Generator", {...})
    twin = process.clone()                                    # a second server, loaded: sessions beside these

The process is `python -m cgan_lib.checks.server` (see there), started in the grading
sandbox (launch.py) or, with --no-sandbox, as a plain child, and talked to over a Unix
socket pair. Each
session gets two fresh pipes, so nothing one test's child writes can reach another's
replies. Everything that comes back is untrusted data: cgan_lib.checks.wire decodes it
(plain values and tensors, never pickles) with a size bound, and the grader judges it.
A request past its deadline, a child or process that dies, a malformed reply: each raises
ProbeFailed, after the child (or the whole process) is killed.
"""
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from cgan_lib.checks import wire

SERVER = [sys.executable, "-m", "cgan_lib.checks.server"]
OUTPUT_KEPT = 64 * 1024          # bytes of the probe's stdout/stderr kept for the log
MAX_REPLY_BYTES = 256 * 1024**2  # the largest reply: the training run's is about 20 MB


class GraderError(RuntimeError):
    """The grader itself could not run the tests (not the student's doing): the submission is not scored."""


class ProbeFailed(Exception):
    """The probe process did not answer: `kind` is 'timeout', 'died' or 'reply'."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class _Tail(threading.Thread):
    """Drain a pipe, keeping only its last OUTPUT_KEPT bytes: the child never blocks on a full pipe."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.kept, self.total = stream, bytearray(), 0

    def run(self):
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.total += len(chunk)
            self.kept += chunk
            del self.kept[:-OUTPUT_KEPT]

    def text(self):
        cut = f"[... {self.total - len(self.kept):,} bytes not kept ...]\n" if self.total > len(self.kept) else ""
        return cut + self.kept.decode(errors="replace")


def _read_exactly(fd, n, deadline, on_end):
    chunks, remaining = [], n
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProbeFailed("timeout", "the test did not finish in time")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except OSError:  # ECONNRESET: the other end died with bytes of ours unread
            chunk = b""
        if not chunk:
            raise ProbeFailed("died", on_end())
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_message(fd, deadline, on_end):
    prefix = _read_exactly(fd, wire.LENGTHS.size, deadline, on_end)
    header, body = wire.LENGTHS.unpack(prefix)
    if header + body > MAX_REPLY_BYTES:
        raise ProbeFailed("reply", f"the test process sent a reply of {header + body:,} bytes, over the limit of "
                                   f"{MAX_REPLY_BYTES:,}")
    try:
        return wire.decode(prefix + _read_exactly(fd, header + body, deadline, on_end))
    except wire.WireError as error:
        raise ProbeFailed("reply", f"the test process sent a malformed reply ({error})") from None


def _write_all(fd, data):
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:1 << 20]):]
    except OSError:
        pass  # the reader died: the reply side says so


class Session:
    """One forked child of the probe process, answering one test's requests until closed."""

    def __init__(self, process, deadline):
        self.process, self.deadline = process, deadline
        request_read, self.request_write = os.pipe()
        self.reply_read, reply_write = os.pipe()
        try:
            socket.send_fds(process.control, [b"session"], [request_read, reply_write])
        except OSError:
            raise ProbeFailed("died", process.death()) from None
        finally:
            os.close(request_read)
            os.close(reply_write)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        self.close(killed=kind is not None)

    def call(self, op, target, request):
        writer = threading.Thread(target=_write_all, args=(self.request_write, wire.encode(
            {"op": op, "target": target, "request": request})), daemon=True)
        writer.start()
        return _read_message(self.reply_read, self.deadline, lambda: "the process running this test ended")

    def close(self, killed=False):
        os.close(self.request_write)
        os.close(self.reply_read)
        if killed:
            self.process.send(b"kill")
        self.process.wait_done(time.monotonic() + 10)


class _Unsandboxed:
    """The probe process as a plain child (--no-sandbox): the kernel's limits, its own session, output kept bounded."""

    def __init__(self, argv, pass_fds, environment):
        self.process = subprocess.Popen(argv, pass_fds=pass_fds, env=environment, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=lambda: _limit_unsandboxed(environment))
        self.output = _Tail(self.process.stdout)
        self.output.start()

    def poll(self):
        return self.process.poll()

    def wait(self, timeout=None):
        code = self.process.wait(timeout)
        self.output.join(timeout=2)
        self.process.stdout.close()
        return code

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: all it started
        except ProcessLookupError:
            pass

    def log(self):
        return self.output.text()


class _Sandboxed:
    """The probe process in the grading sandbox (autograder/isolation/launch.py): as CGAN_PROBE_UID, in the cgroup
    of CGAN_PROBE_CGROUP_PROCS (the submission's tests' own, apart from its notebook's kernel), when they are set."""

    def __init__(self, argv, pass_fds, environment):
        from autograder.isolation import kernel, launch, scratch

        uid = int(environment.get("CGAN_PROBE_UID") or environment["CGAN_SANDBOX_UID"])
        folder = environment["CGAN_PROBE_SCRATCH"]
        os.makedirs(folder, exist_ok=True)
        command = launch.sandboxed_command(
            argv, uid=uid, workdir=folder, scratch=folder, environ=environment,
            processes=int(environment.get("CGAN_KERNEL_PROCESSES", launch.DEFAULT_PROCESSES)),
            scratch_bytes=int(environment.get("CGAN_SCRATCH_BYTES", scratch.DEFAULT_BYTES)),
            scratch_inodes=int(environment.get("CGAN_SCRATCH_INODES", scratch.DEFAULT_INODES)),
            rlimits=kernel.rlimits(environment),
            cgroup=environment.get("CGAN_PROBE_CGROUP_PROCS") or environment.get("CGAN_CGROUP_PROCS"))
        self.sandboxed = launch.launch(command, pass_fds=pass_fds)

    def poll(self):
        return self.sandboxed.poll()

    def wait(self, timeout=None):
        return self.sandboxed.wait(timeout)

    def kill(self):
        self.sandboxed.kill()

    def log(self):
        return "".join(d.kept().decode(errors="replace") for d in (self.sandboxed.stdout, self.sandboxed.stderr))


class ProbeProcess:
    """One probe process: sandboxed when `environment` has CGAN_SANDBOX_UID, else a plain child."""

    def __init__(self, environment):
        self.environment = dict(environment)
        self.child = self.control = None
        self.twin_of = None  # the ProbeProcess whose server forked this one's (clone())

    def start(self):
        self.control, theirs = socket.socketpair()
        argv = [*SERVER, str(theirs.fileno())]
        spawn = _Sandboxed if self.environment.get("CGAN_SANDBOX_UID") else _Unsandboxed
        try:
            self.child = spawn(argv, (theirs.fileno(),), self.environment)
        except (OSError, subprocess.SubprocessError, ImportError) as error:
            raise GraderError(f"could not start the probe process: {type(error).__name__}: {error}") from error
        finally:
            theirs.close()

    @property
    def alive(self):
        return self.child is not None and self.child.poll() is None

    def load(self, prelude, cells, timeout):
        """Load the definitions; the server's report (statements left out, errors, defined names)."""
        if self.child is None:
            self.start()
        message = wire.encode({"prelude": prelude, "cells": cells})
        deadline = time.monotonic() + timeout
        try:
            self.control.sendall(len(message).to_bytes(8, "big") + message)
            size = int.from_bytes(_read_exactly(self.control.fileno(), 8, deadline, self.death), "big")
            if size > MAX_REPLY_BYTES:
                raise ProbeFailed("reply", "the test process's load report is too large")
            return wire.decode(_read_exactly(self.control.fileno(), size, deadline, self.death))
        except wire.WireError as error:
            self.kill()
            raise ProbeFailed("reply", f"the test process sent a malformed load report ({error})") from None
        except OSError:
            self.kill()
            raise ProbeFailed("died", self.death()) from None
        except ProbeFailed:
            self.kill()
            raise

    def clone(self):
        """A twin of this loaded process: its server forks one that answers sessions over a socket of its own.
        Both live in the same sandbox; closing the twin leaves this process running, killing either kills both."""
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [b"clone"], [theirs.fileno()])
        except OSError:
            ours.close()
            raise ProbeFailed("died", self.death()) from None
        finally:
            theirs.close()
        twin = ProbeProcess(self.environment)
        twin.child, twin.control, twin.twin_of = self.child, ours, self
        return twin

    def session(self, deadline):
        if not self.alive:
            raise ProbeFailed("died", self.death())
        return Session(self, deadline)

    def send(self, data):
        try:
            self.control.sendall(data)
        except OSError:
            pass

    def wait_done(self, deadline):
        """Wait for the server's b"done" after a session; kill the whole process if it does not come."""
        try:
            if _read_exactly(self.control.fileno(), 4, deadline, self.death) == b"done":
                return
        except ProbeFailed:
            pass
        self.kill()

    def death(self):
        if self.child is None:
            return "the test process was not running"
        try:
            status = self.child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the test process stopped answering"
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        return f"the test process ended ({how})"

    def kill(self):
        if self.alive:
            self.child.kill()
            self.child.wait()

    def close(self):
        """Stop the process: it holds nothing to save, and a clean exit of torch's interpreter takes a second."""
        if self.child is None:
            return
        self.control.close()
        if self.twin_of is None:  # a twin's server ends with its socket; the sandbox is the original's
            self.kill()
            self.child.wait()  # (already ended on its own: its pipes are closed all the same)

    def log(self):
        return self.child.log() if self.child is not None and self.twin_of is None else ""


def _limit_unsandboxed(environ):
    """In the child, before exec: the kernel's resource limits, and death with the grading worker."""
    import resource

    from autograder.isolation.kernel import die_with_parent, rlimits

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in rlimits(environ).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    die_with_parent()


def probe_launcher(environ=None):
    """A function that starts a new ProbeProcess the way this grading worker runs its kernel.

    With CGAN_SANDBOX_UID set (the pipeline sets it when it sandboxes), the process runs in
    the grading sandbox as CGAN_PROBE_UID (else that user), on a tmpfs scratch of its own
    (CGAN_PROBE_SCRATCH), in the cgroup of CGAN_PROBE_CGROUP_PROCS (else CGAN_CGROUP_PROCS),
    under the kernel's limits; otherwise as a plain child under the same limits (--no-sandbox).
    The pipeline gives the tests a user and a cgroup apart from the notebook's kernel, which
    runs at the same time.
    """
    environ = dict(os.environ if environ is None else environ)
    environ["CGAN_DEVICE"] = "cpu"

    def start():
        process = ProbeProcess(environ)
        process.start()
        return process

    return start
