"""The grading kernel's sandbox: bubblewrap (bwrap) plus a user id of its own.

What the student's code sees, inside new PID, network, IPC and UTS namespaces:

    read-only   the system's programs and libraries (/usr, /lib, ...), a few files of /etc,
                Python (the venv and the Python it was made from), cgan_lib, Fashion-MNIST
    read-write  its own scratch folder, mounted as its working directory (and $HOME); /tmp
                (a fresh tmpfs); the folder with its own kernel's connection file and sockets
    nothing     else: not the gradebook, not solutions/, not the other students, not the
                instructor's home, no network (the kernel talks to the grader over Unix
                sockets, `KernelManager.transport = "ipc"`)

bwrap itself runs as root (so it can mount what the kernel needs wherever it lives, e.g. a
Python under /root/.pyenv), then hands over to the kernel as an unprivileged user id of its
own (one per worker slot; setpriv drops every capability), so that RLIMIT_NPROC bounds its
processes (a fork bomb) and it cannot open the grader's files even where a path leaks.
When the grader goes, the whole sandbox goes (--die-with-parent; PID 1 of its namespace is bwrap).
The sandbox has no GPU devices: grading runs on the CPU, which its short schedule is made for.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from autograder.config import REPO

SANDBOX_UID_BASE = 2_100_000  # worker slot k runs as uid/gid SANDBOX_UID_BASE + k; no such user exists
ETC_FILES = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "ssl/certs", "nsswitch.conf",
             "mime.types", "matplotlibrc"]
KEPT_ENVIRONMENT = ["PATH", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NBGRADER_EXECUTION",
                    "NBGRADER_VALIDATING", "CGAN_DATA_DIR", "CGAN_DEVICE", "MPLBACKEND", "PYTHONHASHSEED"]


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
    if environ.get("CGAN_DATA_DIR"):
        paths.append(environ["CGAN_DATA_DIR"])
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


def command(kernel_argv, *, uid, processes, workdir, scratch, runtime_dir, environ):
    """The bwrap command that runs `kernel_argv` as `uid` in the sandbox, `scratch` mounted at `workdir`."""
    args = ["bwrap", *NAMESPACES, "--clearenv", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    paths = readable_paths(environ)
    parents = sorted({str(parent) for p in [*paths, str(workdir), str(runtime_dir)] for parent in Path(p).parents
                      if str(parent) != "/" and not any(str(parent) == q or str(parent).startswith(q + "/") for q in paths)})
    for parent in parents:  # bwrap would make them 0700, closed to the kernel's user
        args += ["--perms", "0755", "--dir", parent]
    for path in paths:
        args += ["--ro-bind", path, path]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        if os.path.islink(link):  # merged-/usr systems: keep the symlinks, not copies of /usr
            args += ["--symlink", target, link]
    args += ["--bind", str(scratch), str(workdir), "--bind", str(runtime_dir), str(runtime_dir),
             "--chdir", str(workdir), "--setenv", "HOME", str(workdir),
             "--setenv", "MPLCONFIGDIR", str(Path(workdir) / ".matplotlib")]
    for name in KEPT_ENVIRONMENT:
        if name in environ:
            args += ["--setenv", name, environ[name]]
    return args + ["--", *drop_privileges(uid, processes), *kernel_argv]


def processes():
    """(pid, real uid, threads) of every process on the machine, from /proc."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            yield int(status.parent.name), int(fields["Uid"].split()[0]), int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue  # the process ended while we looked


def tasks_by_uid():
    """{real uid: processes and threads} over the machine."""
    counts = {}
    for _, uid, threads in processes():
        counts[uid] = counts.get(uid, 0) + threads
    return counts


class ForkBombWatch(threading.Thread):
    """Kill a sandbox whose user reaches its process limit: RLIMIT_NPROC stops a fork bomb from
    growing, this stops its processes from starving every other student's kernel of CPU."""

    def __init__(self, limit, interval=0.5):
        super().__init__(daemon=True)
        self.limit, self.interval = limit, interval
        self.watched, self.tripped = {}, {}  # uid -> student, student -> tasks seen
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            counts = tasks_by_uid()
            for uid, student in list(self.watched.items()):
                if counts.get(uid, 0) >= self.limit:
                    self.tripped[student] = counts[uid]
                    kill_user(uid)


def kill_user(uid):
    """SIGKILL every process of `uid` (a sandbox's user: only its kernel and what that started)."""
    for pid, owner, _ in processes():
        if owner == uid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue  # already gone
