"""The step between a launcher and bubblewrap: `python -I -S enter.py SPEC` (launch.py writes SPEC).

Runs as root, in the new child of the launcher, then replaces itself with bwrap. In order:

    1. dies with the launcher (PR_SET_PDEATHSIG), unless the spec says otherwise
    2. joins the submission's cgroup (as cgroups.join does): all it starts from here on is in it
    3. sets its resource limits (RLIMIT_CORE 0, and RLIMIT_AS, _CPU, _FSIZE as given)
    4. takes a mount namespace of its own and mounts the bounded scratch tmpfs there (scratch.py)
    5. execs `bwrap --args FD sh /.sandbox-start`: bwrap reads its options from the pipe FD and the
       sandbox's command from a file only root can read inside, so the sandbox's PID 1 shows
       no host path in /proc/1/cmdline

SPEC is JSON: {"parent": pid or null, "cgroup_procs": [...], "rlimits": {"RLIMIT_AS": bytes, ...},
"scratch": {"path", "size_bytes", "inodes", "uid"} or null, "bwrap_options": [...], "command": [...]}.
It runs with -I -S (no site-packages, nothing from the environment): standard library only.
"""
import ctypes
import fcntl
import json
import os
import resource
import shlex
import signal
import sys

START_SCRIPT = "/.sandbox-start"   # inside the sandbox: `exec <command>`, root-only (0600)
BWRAP_ENVIRONMENT = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031


def die_with(parent):
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it went before the line above took effect
        sys.exit(f"enter.py: the launcher (pid {parent}) is gone")


def join_cgroup(procs_files):
    """cgroups.join(), without importing cgroups.py (its dataclasses and re cost 20-50 ms a start)."""
    for procs in procs_files:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))


def set_limits(rlimits):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault leaves no multi-GB core file
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def pipe_holding(data):
    """The read end of a pipe that holds `data` and is closed for writing; inheritable."""
    read, write = os.pipe()
    if len(data) > 60_000:
        fcntl.fcntl(write, F_SETPIPE_SZ, len(data) + 4096)
    os.write(write, data)
    os.close(write)
    os.set_inheritable(read, True)
    return read


def main(spec):
    if spec.get("parent"):
        die_with(spec["parent"])
    join_cgroup(spec.get("cgroup_procs") or [])
    set_limits(spec.get("rlimits") or {})
    options = list(spec["bwrap_options"])
    if spec.get("scratch"):
        scratch.private_mount_namespace()
        scratch.mount_tmpfs(**spec["scratch"])
    start = pipe_holding(f"exec {shlex.join(spec['command'])}\n".encode())
    options += ["--perms", "0600", "--ro-bind-data", str(start), START_SCRIPT]
    arguments = pipe_holding(b"".join(option.encode() + b"\0" for option in options))
    os.execvpe("bwrap", ["bwrap", "--args", str(arguments), "sh", START_SCRIPT], BWRAP_ENVIRONMENT)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
    from autograder.isolation import scratch
    try:
        main(json.loads(sys.argv[1]))
    except OSError as error:  # e.g. no such cgroup, a tmpfs that cannot be mounted, no bwrap
        sys.exit(f"enter.py: cannot start the sandbox: {error}")
