"""The grading kernel (autograder/isolation/kernel.py) started as nbgrader starts it, through jupyter_client.

It must run sandboxed, in the submission's cgroup, on the bounded scratch; pass at most the bound of
what it writes to its inherited stderr on to the grader's log; lock its runtime folder once its
sockets exist; and take its sandbox down with it however it ends. Needs root, bubblewrap and
cgroups: skipped with the reason where they are missing, failed when CGAN_REQUIRE_SANDBOX is set.
"""
import os
import signal
import time
from types import SimpleNamespace

import pytest
from jupyter_client.manager import KernelManager

from autograder.config import KERNEL_NAME
from autograder.isolation import cgroups, launch, sandbox
from autograder.scoring.nbgrader_setup import install_kernelspec

KERNEL_UID = sandbox.SANDBOX_UID_BASE + 950  # far from the worker slots of a grading beside us
MiB = 1 << 20


@pytest.fixture(scope="module")
def isolation():
    reason = launch.unavailable_reason()
    if reason and os.environ.get("CGAN_REQUIRE_SANDBOX"):
        pytest.fail(f"the sandbox is required here (CGAN_REQUIRE_SANDBOX) but unavailable: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def kernel(isolation, tmp_path, monkeypatch):
    """A started grading kernel: its KernelManager, client, cgroup, runtime folder and stderr file."""
    monkeypatch.setenv("JUPYTER_PATH", str(install_kernelspec(tmp_path / "jupyter")))
    for folder in ("scratch", "runtime", "work"):
        (tmp_path / folder).mkdir(mode=0o700)
    group = cgroups.SubmissionCgroup.create(f"kernel-test-{os.getpid()}-{time.monotonic_ns()}",
                                            memory_bytes=4 << 30, pids=256)
    environment = dict(os.environ, CGAN_SANDBOX_UID=str(KERNEL_UID), CGAN_SANDBOX_SCRATCH=str(tmp_path / "scratch"),
                       CGAN_CGROUP_PROCS=group.procs_env(), CGAN_SCRATCH_BYTES=str(64 * MiB),
                       CGAN_KERNEL_MEMORY=str(8 << 30))
    manager = KernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(tmp_path / "runtime" / "kernel"),
                            connection_file=str(tmp_path / "runtime" / "kernel-1.json"))
    stderr = open(tmp_path / "kernel.stderr", "wb")
    manager.start_kernel(env=environment, cwd=str(tmp_path / "work"), stdout=stderr, stderr=stderr)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield SimpleNamespace(manager=manager, client=client, group=group, runtime=tmp_path / "runtime",
                              stderr=tmp_path / "kernel.stderr", launcher=manager.provisioner.process)
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=True)
        else:
            manager.cleanup_resources()
        manager.context.destroy(linger=0)
        stderr.close()
        group.remove()


def execute(kernel, code):
    """The kernel's stdout for `code`; fails on an error."""
    printed = []
    reply = kernel.client.execute_interactive(
        code, timeout=120, output_hook=lambda m: printed.append(m["content"].get("text", "")))
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def wait_until_empty(group, timeout=15):
    deadline = time.monotonic() + timeout
    while group.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    return group.pids()


def test_the_kernel_runs_sandboxed_in_its_cgroup_on_the_bounded_scratch(kernel):
    seen = execute(kernel, "import os\nst = os.statvfs('.')\npid1 = open('/proc/1/cmdline').read().split(chr(0))\n"
                           "print(os.getuid(), st.f_blocks * st.f_frsize, pid1)")
    uid, scratch_bytes, pid1 = seen.split(maxsplit=2)
    assert int(uid) == KERNEL_UID and int(scratch_bytes) == 64 * MiB
    assert pid1.startswith("['bwrap', '--args', '") and pid1.strip().endswith("'sh', '/.sandbox-start', '']")
    assert kernel.group.pids(), "the sandbox is not in the submission's cgroup"


def test_a_flood_on_the_kernels_inherited_stderr_reaches_the_grader_bounded(kernel):
    """ipykernel echoes fd-level output to the stderr it inherited: 100 MB written there."""
    code = ("import os, sys\nfd = sys.stderr._original_stdstream_copy\n"
            "for _ in range(100): os.write(fd, b'e' * (1 << 20))\nprint('flooded')")
    assert execute(kernel, code) == "flooded\n"
    kernel.manager.shutdown_kernel(now=False)
    assert kernel.launcher.wait(30) == 0
    assert os.path.getsize(kernel.stderr) <= 2 * 64 * 1024 + 4096
    assert b"bytes of stderr left out" not in kernel.stderr.read_bytes()  # the launcher reports it its own way
    assert b"left out; the last 65536 follow" in kernel.stderr.read_bytes()


def test_the_runtime_folder_is_closed_once_the_sockets_exist(kernel):
    code = f"""
for path in ({str(kernel.runtime / 'junk')!r}, {str(kernel.runtime / 'kernel-1.json')!r}):
    try:
        open(path, 'a').write('x' * 1000)
        print('WROTE', path)
    except PermissionError:
        print('refused')
"""
    assert execute(kernel, code).split() == ["refused", "refused"]
    assert not (kernel.runtime / "junk").exists()


@pytest.mark.parametrize("signum, exit_status", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, -9)])
def test_the_sandbox_ends_with_its_launcher(kernel, signum, exit_status):
    """SIGTERM is passed on to the sandbox; SIGKILL (jupyter_client's last resort) takes it down by PDEATHSIG."""
    assert kernel.group.pids()
    os.kill(kernel.launcher.pid, signum)
    assert kernel.launcher.wait(30) == exit_status
    assert wait_until_empty(kernel.group) == []
