"""The Jupyter kernel nbgrader starts when the lab grades: IPython under limits, in a sandbox.

nbgrader's Execute runs the kernelspec `cgan-grading` (written by autograder.scoring.nbgrader_setup into
the grading workspace), whose command is

    python autograder/isolation/kernel.py -f {connection_file}

This script runs as the grader, sets the limits below (the kernel and all it starts inherit
them), and replaces itself with the IPython kernel: inside the bubblewrap sandbox of
autograder/isolation/sandbox.py, as an unprivileged user of its own, when CGAN_SANDBOX_UID is set;
directly otherwise. The grader sets, per submission:

    CGAN_KERNEL_MEMORY      bytes of address space (torch alone maps about 3.4 GB)
    CGAN_KERNEL_CPU         seconds of CPU time, all threads together (then SIGKILL)
    CGAN_KERNEL_FILE_SIZE   bytes, the largest file the kernel may write
    CGAN_KERNEL_PROCESSES   processes and threads of the sandbox's user (a fork bomb stops there)
                            (set inside the sandbox, where the kernel is no longer root)
    CGAN_SANDBOX_UID        the sandbox's user id; CGAN_SANDBOX_SCRATCH its writable folder
"""
import ctypes
import os
import resource
import signal
import sys
from pathlib import Path

LIMITS = {"CGAN_KERNEL_MEMORY": resource.RLIMIT_AS,
          "CGAN_KERNEL_CPU": resource.RLIMIT_CPU,
          "CGAN_KERNEL_FILE_SIZE": resource.RLIMIT_FSIZE}
PR_SET_PDEATHSIG = 1


def apply_limits(environ=os.environ):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault leaves no multi-GB core file
    for name, limit in LIMITS.items():
        if environ.get(name):
            value = int(environ[name])
            resource.setrlimit(limit, (value, value))
    # when the grader's worker dies (e.g. killed at the time limit), so does this kernel
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def connection_file(argv):
    return Path(argv[argv.index("-f") + 1])


def sandboxed(argv, environ=os.environ):
    """Hand the scratch folder and this kernel's connection folder to the sandbox's user; its bwrap command."""
    from autograder.isolation import sandbox  # importable: __main__ below puts the repository on sys.path

    uid, scratch = int(environ["CGAN_SANDBOX_UID"]), Path(environ["CGAN_SANDBOX_SCRATCH"])
    runtime = connection_file(argv).parent
    for path in (scratch, runtime, connection_file(argv)):
        os.chown(path, uid, uid)
    os.chmod(runtime, 0o700)
    kernel = [sys.executable, "-m", "ipykernel_launcher", *argv]
    return sandbox.command(kernel, uid=uid, processes=int(environ.get("CGAN_KERNEL_PROCESSES", 256)),
                           workdir=Path.cwd(), scratch=scratch, runtime_dir=runtime, environ=environ)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    apply_limits()
    argv = sys.argv[1:]
    if os.environ.get("CGAN_SANDBOX_UID"):
        command = sandboxed(argv)
    else:
        command = [sys.executable, "-m", "ipykernel_launcher", *argv]
    os.execvp(command[0], command)
