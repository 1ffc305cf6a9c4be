"""The grading kernel's sandbox: bubblewrap (bwrap) plus a user id of its own.

What the student's code sees, inside new PID, network, IPC, UTS and cgroup namespaces:

    read-only   the system's programs and libraries (/usr, /lib, ...), a few files of /etc,
                Python (the venv and the Python it was made from), cgan_lib, Fashion-MNIST
    read-write  its working directory (and $HOME) and /tmp: two folders of one bounded tmpfs,
                the scratch (scratch.py), never the host's disk; the folder with its own kernel's
                connection file and sockets (which kernel.py closes once the sockets exist)
    nothing     else: not the gradebook, not solutions/, not the other students, not the
                instructor's home, no network (the kernel talks to the grader over Unix
                sockets, `KernelManager.transport = "ipc"`)

bwrap itself runs as root (so it can mount what the kernel needs wherever it lives, e.g. a
Python under /root/.pyenv), then hands over to the kernel as an unprivileged user id of its
own (one per worker slot; setpriv drops every capability), so that RLIMIT_NPROC bounds its
processes and it cannot open the grader's files even where a path leaks. bwrap_options() are
its options; launch.py starts it (through enter.py, which passes them with --args, so the
sandbox's PID 1 shows `bwrap --args N sh /.sandbox-start` and no host path), in the
submission's cgroup (cgroups.py: CPU share, memory cap, process cap), with bounded pipes.
When the grader goes, the whole sandbox goes (--die-with-parent; PID 1 of its namespace is bwrap).
The sandbox has no GPU devices: grading runs on the CPU, which its short schedule is made for.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.config import REPO

SANDBOX_UID_BASE = 2_100_000  # worker slot k runs as uid/gid SANDBOX_UID_BASE + k; no such user exists
TESTS_UID_OFFSET = 10_000     # ... and its tests' probe process as SANDBOX_UID_BASE + TESTS_UID_OFFSET + k
ETC_FILES = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "ssl/certs", "nsswitch.conf",
             "mime.types", "matplotlibrc"]
KEPT_ENVIRONMENT = ["PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NBGRADER_EXECUTION",
                    "NBGRADER_VALIDATING", "CGAN_DATA_DIR", "CGAN_DATA_CACHE", "CGAN_DEVICE", "MPLBACKEND", "PYTHONHASHSEED"]


NAMESPACES = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session"]


def drop_privileges(uid, processes):
    """The command prefix that runs the rest as `uid`, without capabilities, at most `processes` tasks."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--", "prlimit", f"--nproc={processes}:{processes}", "--"]


def unavailable_reason():
    """None when the sandbox can run here, else why not and what to do."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ("bubblewrap is not installed: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
                "or grade without the sandbox: --no-sandbox")
    if os.geteuid() != 0:
        return ("the sandbox gives each kernel a user id of its own, which needs root: run the grader as root "
                "(e.g. in the course's grading container or VM), or grade without the sandbox: --no-sandbox")
    probe = subprocess.run([bwrap, *NAMESPACES, "--ro-bind", "/", "/", *drop_privileges(SANDBOX_UID_BASE, 64), "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return (f"bubblewrap cannot create namespaces here ({probe.stderr.strip() or probe.returncode}); "
                "grade without the sandbox: --no-sandbox")
    return None


def readable_paths(environ):
    """What the kernel needs to read: system, Python, cgan_lib, the dataset ($CGAN_DATA_DIR)."""
    paths = [p for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32") if os.path.exists(p)]
    paths += [f"/etc/{name}" for name in ETC_FILES if os.path.exists(f"/etc/{name}")]
    paths += [sys.prefix, sys.base_prefix, str(REPO / "cgan_lib")]
    for name in ("CGAN_DATA_DIR", "CGAN_DATA_CACHE"):  # the dataset, and its decoded copy (read-only here)
        if environ.get(name) and os.path.isdir(environ[name]):
            paths.append(environ[name])
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


def bwrap_options(*, workdir, scratch, runtime_dir=None, environ=os.environ, extra_ro_binds=()):
    """bwrap's options (no command): `scratch`/home mounted at `workdir` (also $HOME), `scratch`/tmp at /tmp
    (scratch.py's tmpfs), `runtime_dir` at its own path, the system and Python read-only, and
    `extra_ro_binds` (paths, read-only at the same path)."""
    args = [*NAMESPACES, "--clearenv", "--proc", "/proc", "--dev", "/dev", "--bind", str(Path(scratch) / "tmp"), "/tmp"]
    paths = list(dict.fromkeys([*readable_paths(environ), *(os.path.realpath(p) for p in extra_ro_binds)]))
    writable = [str(workdir), *([str(runtime_dir)] if runtime_dir else [])]
    parents = sorted({str(parent) for p in [*paths, *writable] for parent in Path(p).parents
                      if str(parent) != "/" and not any(str(parent) == q or str(parent).startswith(q + "/") for q in paths)})
    for parent in parents:  # bwrap would make them 0700, closed to the sandbox's user
        args += ["--perms", "0755", "--dir", parent]
    for path in paths:
        args += ["--ro-bind", path, path]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        if os.path.islink(link):  # merged-/usr systems: keep the symlinks, not copies of /usr
            args += ["--symlink", target, link]
    args += ["--bind", str(Path(scratch) / "home"), str(workdir)]
    if runtime_dir:
        args += ["--bind", str(runtime_dir), str(runtime_dir)]
    args += ["--chdir", str(workdir), "--setenv", "HOME", str(workdir),
             "--setenv", "MPLCONFIGDIR", str(Path(workdir) / ".matplotlib")]
    for name in KEPT_ENVIRONMENT:
        if name in environ:
            args += ["--setenv", name, environ[name]]
    return args
