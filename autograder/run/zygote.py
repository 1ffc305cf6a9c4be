"""A warm process that forks each submission's grading process: the imports are paid once per worker.

    zygote = Zygote(environment, cwd)                    # python -m autograder.run.zygote
    zygote.fork(job_file, environment, log_file, cwd)    # a child runs autograder.run.worker.main(job_file)
    status = zygote.wait(timeout)                        # its exit status; None: time ran out
    zygote.kill_child()                                  # the child's whole session

Starting a grading process from scratch imported nbgrader, nbconvert, sqlalchemy and torch, and
then torch._dynamo at the first Adam, every time: about 4 s per submission. The zygote imports
them once, then waits on its stdin for jobs, one at a time. For each it forks a child that
starts a session of its own (so that it and the kernel it starts can be killed together),
dies with the zygote, takes the job's environment, working directory and log, and calls the
zygote's target (fixed when it starts: autograder.run.worker:main) with the job file; the
zygote reports the child's pid, then its exit status. It never runs threads of its own, so
forking it is safe. The zygote dies with the thread that started it, and when its stdin closes.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

from autograder.isolation.kernel import die_with_parent

TARGET = "autograder.run.worker:main"
# What grading imports: nbgrader's path, the checks, and what the assignments' prelude cells import
# (they run in the grader too). A module missing here is imported by each child instead: slower, not wrong.
PRELOAD = ("autograder.run.worker", "nbgrader.converters", "nbgrader.preprocessors", "nbconvert.exporters",
           "nbclient", "jupyter_client.manager", "jupyter_client.provisioning", "sqlalchemy.dialects.sqlite",
           "autograder.reports.feedback_exporter", "cgan_lib.checks.train_step", "cgan_lib.checks.training_run",
           "cgan_lib.checks.netviz", "cgan_lib.viz", "cgan_lib.evaluate", "cgan_lib.checkpoint", "cgan_lib.progress",
           "cgan_lib.schedules", "matplotlib.pyplot", "IPython.display", "torch.optim.swa_utils")


def _child(target, request, replies):
    """In the forked child: become the grading process of `request`; never returns."""
    code = 1
    try:
        os.close(replies)  # the zygote's channel to the grading side
        os.setsid()
        die_with_parent()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["environment"])
        os.chdir(request["cwd"])
        import tempfile

        import torch

        tempfile.tempdir = None  # $TMPDIR is the job's now
        torch.set_num_threads(int(request["environment"].get("OMP_NUM_THREADS", "1")))
        target(request["job"])
        code = 0
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(target_name, preload=PRELOAD):
    """The zygote's loop: a JSON request per line on stdin; "pid N" and then "exit S" on stdout."""
    import importlib

    from cgan_lib.checks.server import warm_up

    for module in preload:
        importlib.import_module(module)
    warm_up()  # torch's first Adam imports torch._dynamo: 1.6 s
    module, _, function = target_name.partition(":")
    target = getattr(importlib.import_module(module), function)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    print("ready", file=replies)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _child(target, json.loads(line), replies.fileno())
        print(f"pid {pid}", file=replies)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", file=replies)


class ZygoteDied(RuntimeError):
    pass


class Zygote:
    """The grading side's handle on one zygote process (one per worker thread: jobs run one at a time)."""

    def __init__(self, environment, cwd, target=TARGET, start_timeout=120):
        self.process = subprocess.Popen([sys.executable, "-m", "autograder.run.zygote", target], cwd=cwd, env=environment,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                        preexec_fn=die_with_parent)  # strictly: with the thread that starts it
        self.buffered, self.child = b"", None
        try:
            ready = self._line(time.monotonic() + start_timeout)
        except ZygoteDied:
            ready = None
        if ready != "ready":
            self.close()
            raise ZygoteDied(f"the grading zygote did not start (`python -m autograder.run.zygote {target}` "
                             f"exited with status {self.process.returncode}; the worker's log has its error)")

    @property
    def alive(self):
        return self.process.poll() is None

    def _line(self, deadline):
        """The zygote's next line; None when the deadline passed; ZygoteDied when it ended."""
        while b"\n" not in self.buffered:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise ZygoteDied(f"the grading zygote ended (status {self.process.wait()})")
                self.buffered += chunk
        line, self.buffered = self.buffered.split(b"\n", 1)
        return line.decode()

    def fork(self, job_file, environment, log_file, cwd):
        request = {"job": str(job_file), "environment": environment, "log": str(log_file), "cwd": str(cwd)}
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
        except OSError:
            raise ZygoteDied("the grading zygote does not take jobs") from None
        reply = self._line(time.monotonic() + 30)
        if not reply or not reply.startswith("pid "):
            raise ZygoteDied(f"the grading zygote did not fork (it said {reply!r})")
        self.child = int(reply.split()[1])

    def wait(self, timeout):
        """The child's exit status (negative: killed by that signal); None if it still runs after `timeout` s."""
        reply = self._line(time.monotonic() + timeout)
        if reply is None:
            return None
        self.child = None
        return int(reply.split()[1])

    def kill_child(self):
        """SIGKILL the child's session (the grading process, its kernel and anything they started); its status."""
        try:
            os.killpg(self.child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait(60)

    def close(self):
        """Stop the zygote (a child it is running dies with it)."""
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


if __name__ == "__main__":  # python -m autograder.run.zygote MODULE:FUNCTION
    serve(sys.argv[1])
