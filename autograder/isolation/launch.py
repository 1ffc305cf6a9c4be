"""Start a command in the sandbox, in a submission's cgroup, with bounded pipes (the kernel's and the probe's).

    group = cgroups.SubmissionCgroup.create("alice", memory_bytes=8 << 30, pids=256)
    command = sandboxed_command(argv, uid=uid, workdir=..., scratch=..., runtime_dir=..., environ=env,
                                cgroup=group, rlimits={"RLIMIT_CPU": 630})
    with launch(command, pass_fds=(to_probe, from_probe)) as sandboxed:
        code = sandboxed.wait()
    sandboxed.stderr.kept()        # the first and last 64 KB it wrote there; the rest was discarded
    group.remove()

The command runs enter.py, which joins the cgroup, sets the limits, mounts the bounded scratch
tmpfs in a mount namespace of its own and execs bwrap (sandbox.py's options) with `argv` as
`uid`, without capabilities, at most `processes` tasks of that uid (RLIMIT_NPROC). stdin is
/dev/null; stdout and stderr are pipes drained by BoundedDrain threads (pipes.py); the fds in
`pass_fds` reach `argv` at the same numbers. The sandbox dies with the process that launched
it (PR_SET_PDEATHSIG, then bwrap's --die-with-parent) -- strictly, with the launching thread:
launch from a thread that lives as long as the sandbox should, or pass die_with_parent=False.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.isolation import cgroups, sandbox
from autograder.isolation.pipes import KEEP_BYTES, BoundedDrain
from autograder.isolation.scratch import DEFAULT_BYTES, DEFAULT_INODES

ENTER = Path(__file__).with_name("enter.py")
DEFAULT_PROCESSES = 256
LAUNCHER_ENVIRONMENT = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
DRAIN_JOIN_S = 5.0
PROBE_UID = sandbox.SANDBOX_UID_BASE - 1  # unavailable_reason()'s trial run; never a worker slot's


def _procs_files(cgroup):
    if cgroup is None:
        return []
    if isinstance(cgroup, cgroups.SubmissionCgroup):
        return cgroup.procs_files
    if isinstance(cgroup, str):  # PROCS_ENV's value
        return [f for f in cgroup.split(os.pathsep) if f]
    return [str(f) for f in cgroup]


def sandboxed_command(argv, *, uid, workdir, scratch, runtime_dir=None, environ=os.environ, extra_ro_binds=(),
                      processes=DEFAULT_PROCESSES, scratch_bytes=DEFAULT_BYTES, scratch_inodes=DEFAULT_INODES,
                      mount_scratch=True, rlimits=None, cgroup=None, die_with_parent=True):
    """The host command that runs `argv` in the sandbox; run it from this process (launch()).

    uid             the sandbox's user (sandbox.SANDBOX_UID_BASE + slot), no capabilities
    workdir         the sandbox's working directory and $HOME: `scratch`/home mounted there
    scratch         a host folder; a tmpfs of `scratch_bytes` and `scratch_inodes` is mounted on it in
                    the sandbox's own mount namespace (mount_scratch=False: the caller mounted one,
                    e.g. scratch.ScratchTmpfs, and wants to share it)
    runtime_dir     a host folder mounted read-write at its own path (the kernel's sockets), or None
    environ         where the kept variables come from (sandbox.KEPT_ENVIRONMENT); the rest is cleared
    extra_ro_binds  more host paths the command may read, at the same paths
    rlimits         {"RLIMIT_AS" | "RLIMIT_CPU" | "RLIMIT_FSIZE": value}, set before bwrap starts
    cgroup          a cgroups.SubmissionCgroup, its procs files, or cgroups.PROCS_ENV's value; None: stay
    """
    spec = {"parent": os.getpid() if die_with_parent else None,
            "cgroup_procs": _procs_files(cgroup),
            "rlimits": dict(rlimits or {}),
            "scratch": ({"path": str(scratch), "size_bytes": int(scratch_bytes), "inodes": int(scratch_inodes),
                         "uid": uid} if mount_scratch else None),
            "bwrap_options": sandbox.bwrap_options(workdir=workdir, scratch=scratch, runtime_dir=runtime_dir,
                                                   environ=environ, extra_ro_binds=extra_ro_binds),
            "command": [*sandbox.drop_privileges(uid, processes), *map(str, argv)]}
    return [sys.executable, "-I", "-S", str(ENTER), json.dumps(spec)]


class Sandboxed:
    """A running sandbox: `process` (the Popen of enter.py, then bwrap), `stdout` and `stderr` (BoundedDrain)."""

    def __init__(self, process, stdout, stderr):
        self.process, self.stdout, self.stderr = process, stdout, stderr

    @property
    def pid(self):
        return self.process.pid

    @property
    def returncode(self):
        return self.process.returncode

    def poll(self):
        return self.process.poll()

    def wait(self, timeout=None):
        """Its exit status (bwrap's: the command's, or 128 + signal number); then the pipes are drained."""
        code = self.process.wait(timeout)
        for drain in (self.stdout, self.stderr):
            drain.join(DRAIN_JOIN_S)
        return code

    def send_signal(self, signum):
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self):
        """SIGKILL bwrap; the sandbox dies with it (--die-with-parent). The cgroup's kill() is the sure way."""
        if self.process.poll() is None:
            self.process.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        self.wait()


def launch(command, *, pass_fds=(), keep_bytes=KEEP_BYTES, echo_stdout=None, echo_stderr=None):
    """Start `command` (from sandboxed_command) with stdin /dev/null, bounded stdout and stderr, and the
    inheritable fds `pass_fds`. `echo_*`: binary files that get the first `keep_bytes` as they come."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               pass_fds=pass_fds, env=LAUNCHER_ENVIRONMENT)
    stdout = BoundedDrain(process.stdout, "stdout", keep_bytes, echo_stdout)
    stderr = BoundedDrain(process.stderr, "stderr", keep_bytes, echo_stderr)
    stdout.start()
    stderr.start()
    return Sandboxed(process, stdout, stderr)


def unavailable_reason():
    """None when launch() works here (root, bubblewrap, cgroups, a tmpfs scratch), else what is missing and
    what to do, in one message: it starts `true` the way the kernel is started."""
    reason = sandbox.unavailable_reason() or cgroups.unavailable_reason()
    if reason:
        return reason
    with tempfile.TemporaryDirectory() as folder, \
            cgroups.SubmissionCgroup.create(f"probe-{os.getpid()}", memory_bytes=256 << 20, pids=16) as group:
        (Path(folder) / "scratch").mkdir()
        command = sandboxed_command(["true"], uid=PROBE_UID, workdir=Path(folder) / "work",
                                    scratch=Path(folder) / "scratch", environ={}, cgroup=group, scratch_bytes=1 << 20)
        with launch(command) as trial:
            code = trial.wait(60)
    if code != 0:
        return (f"a sandboxed `true` failed (exit {code}): {trial.stderr.kept().decode(errors='replace').strip()}; "
                "grade without the sandbox: --no-sandbox")
    return None
