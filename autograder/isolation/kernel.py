"""The Jupyter kernel nbgrader starts when the lab grades: IPython under limits, in a sandbox.

nbgrader's Execute runs the kernelspec `cgan-grading` (written by autograder.scoring.nbgrader_setup into
the grading workspace), whose command is

    python autograder/isolation/kernel.py -f {connection_file}

This script runs as the grader. When CGAN_SANDBOX_UID is set it stays, as the parent of the
sandbox (launch.py): the IPython kernel runs in bubblewrap as an unprivileged user of its own,
in the submission's cgroup, on a bounded scratch tmpfs, with stdout and stderr on bounded pipes
(the first 64 KB of each are passed on to this script's own as they come, the last 64 KB at the
end, the rest discarded). SIGTERM, SIGHUP and SIGINT are passed on to the sandbox; when this
script or the worker that started it dies, so does the sandbox. Interrupts reach the kernel by
message (the kernelspec's interrupt_mode). Once the kernel's sockets exist, its runtime folder is
closed to it. Without CGAN_SANDBOX_UID this script sets the limits and replaces itself with the kernel.

The grader sets, per submission:

    CGAN_KERNEL_MEMORY      bytes of address space (torch alone maps about 3.4 GB)
    CGAN_KERNEL_CPU         seconds of CPU time, all threads together (then SIGKILL)
    CGAN_KERNEL_FILE_SIZE   bytes, the largest file the kernel may write
    CGAN_KERNEL_PROCESSES   processes and threads of the sandbox's user (RLIMIT_NPROC)
    CGAN_SANDBOX_UID        the sandbox's user id; CGAN_SANDBOX_SCRATCH the host folder of its scratch
    CGAN_SCRATCH_BYTES      size of the scratch tmpfs (default scratch.DEFAULT_BYTES)
    CGAN_SCRATCH_INODES     files and folders in it (default scratch.DEFAULT_INODES)
    CGAN_CGROUP_PROCS       the submission cgroup's procs files (SubmissionCgroup.procs_env()); unset: none
"""
import ctypes
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

LIMITS = {"CGAN_KERNEL_MEMORY": "RLIMIT_AS", "CGAN_KERNEL_CPU": "RLIMIT_CPU", "CGAN_KERNEL_FILE_SIZE": "RLIMIT_FSIZE"}
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
SOCKET_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
SOCKET_POLL_S = 0.005
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """SIGKILL this process when its parent dies -- strictly, when the thread that started it ends
    (PR_SET_PDEATHSIG). Here: when the grader's worker dies (e.g. killed at the time limit), so does
    this script, and its sandbox; the zygote and the unsandboxed probe use it too."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def rlimits(environ=os.environ):
    """{"RLIMIT_AS": bytes, ...} from the CGAN_KERNEL_* variables that are set."""
    return {name: int(environ[variable]) for variable, name in LIMITS.items() if environ.get(variable)}


def connection_file(argv):
    return Path(argv[argv.index("-f") + 1])


def open_runtime(connection, uid):
    """Let the kernel's user create its sockets beside the connection file, and read (not write) that file."""
    runtime = connection.parent
    os.chown(runtime, uid, uid)
    os.chmod(runtime, 0o700)
    os.chown(connection, 0, uid)
    os.chmod(connection, 0o640)


def close_runtime_once_bound(connection, uid, sandboxed):
    """Once the kernel has bound its Unix sockets, take back the folder: the kernel's user can no longer
    create files in it (it keeps the sockets it made). Runs in a thread; ends with the sandbox."""
    info = json.loads(connection.read_text())
    if info.get("transport") != "ipc":
        return
    sockets = [Path(f"{info['ip']}-{info[port]}") for port in SOCKET_PORTS]
    while sandboxed.poll() is None:
        if all(s.exists() for s in sockets):
            os.chown(connection.parent, 0, uid)
            os.chmod(connection.parent, 0o750)
            return
        time.sleep(SOCKET_POLL_S)


def run_sandboxed(argv, environ=os.environ):
    """Run the kernel in the sandbox as this script's child; its exit status."""
    from autograder.isolation import launch, scratch  # importable: __main__ below puts the repository on sys.path

    uid, connection = int(environ["CGAN_SANDBOX_UID"]), connection_file(argv)
    open_runtime(connection, uid)
    command = launch.sandboxed_command(
        [sys.executable, "-m", "ipykernel_launcher", *argv], uid=uid, workdir=Path.cwd(),
        scratch=environ["CGAN_SANDBOX_SCRATCH"], runtime_dir=connection.parent, environ=environ,
        processes=int(environ.get("CGAN_KERNEL_PROCESSES", launch.DEFAULT_PROCESSES)),
        scratch_bytes=int(environ.get("CGAN_SCRATCH_BYTES", scratch.DEFAULT_BYTES)),
        scratch_inodes=int(environ.get("CGAN_SCRATCH_INODES", scratch.DEFAULT_INODES)),
        rlimits=rlimits(environ), cgroup=environ.get("CGAN_CGROUP_PROCS"))
    with launch.launch(command, echo_stdout=sys.stdout.buffer, echo_stderr=sys.stderr.buffer) as sandboxed:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, lambda signum, _: sandboxed.send_signal(signum))
        threading.Thread(target=close_runtime_once_bound, args=(connection, uid, sandboxed), daemon=True).start()
        code = sandboxed.wait()
    for drain, stream in ((sandboxed.stdout, sys.stdout.buffer), (sandboxed.stderr, sys.stderr.buffer)):
        if drain.total_bytes > len(drain.head):
            stream.write(f"\n[kernel {drain.stream_name}: {drain.total_bytes} bytes in all, {drain.discarded_bytes} "
                         f"left out; the last {len(drain.tail)} follow]\n".encode() + drain.tail)
        stream.flush()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def exec_unsandboxed(argv, environ=os.environ):
    """--no-sandbox: set the limits on this process and become the kernel."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in rlimits(environ).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    command = [sys.executable, "-m", "ipykernel_launcher", *argv]
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    die_with_parent()
    if os.environ.get("CGAN_SANDBOX_UID"):
        sys.exit(run_sandboxed(sys.argv[1:]))
    exec_unsandboxed(sys.argv[1:])
