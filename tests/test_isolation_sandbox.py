"""The attacks that got through the sandbox, replayed inside it: each must now be stopped and reported.

Needs root, bubblewrap and cgroups (v1 or v2): skipped with the reason where they are missing,
failed instead when CGAN_REQUIRE_SANDBOX is set. Every process a test starts lives in a cgroup
of the test's own, and is stopped through it (SubmissionCgroup.kill: by PID from cgroup.procs).
"""
import errno
import itertools
import os
import re
import sys
import time
from pathlib import Path

import pytest

from autograder.config import REPO
from autograder.isolation import cgroups, launch, sandbox, scratch

TEST_UIDS = itertools.count(sandbox.SANDBOX_UID_BASE + 900)  # far from the worker slots of a grading beside us
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20


@pytest.fixture(scope="module")
def isolation():
    reason = launch.unavailable_reason()
    if reason and os.environ.get("CGAN_REQUIRE_SANDBOX"):
        pytest.fail(f"the sandbox is required here (CGAN_REQUIRE_SANDBOX) but unavailable: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def make_group(isolation):
    """SubmissionCgroup.create with a unique name; every group is killed and removed after the test."""
    made = []

    def make(memory_bytes=1 << 30, pids=128):
        group = cgroups.SubmissionCgroup.create(f"test-{os.getpid()}-{len(made)}-{time.monotonic_ns()}",
                                                memory_bytes=memory_bytes, pids=pids)
        made.append(group)
        return group

    yield make
    for group in made:
        group.remove()


@pytest.fixture
def run(tmp_path):
    """run(group, argv, ...) -> a launched Sandboxed, its scratch under tmp_path; all are ended after the test."""
    started = []

    def start(group, argv, scratch_bytes=64 * MiB, scratch_inodes=1000, processes=256):
        folder = tmp_path / f"sandbox{len(started)}"
        (folder / "scratch").mkdir(parents=True)
        command = launch.sandboxed_command(argv, uid=next(TEST_UIDS), workdir=folder / "work",
                                           scratch=folder / "scratch", environ={"PATH": "/usr/bin:/bin"},
                                           cgroup=group, scratch_bytes=scratch_bytes,
                                           scratch_inodes=scratch_inodes, processes=processes)
        started.append(launch.launch(command))
        return started[-1]

    yield start
    for sandboxed in started:
        sandboxed.kill()
        sandboxed.wait(30)


def python(code):
    return [sys.executable, "-c", code]


def wait_for(condition, timeout=30, what="the sandbox"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def cpu_seconds(pids):
    """User + system CPU time of the live processes `pids`, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def share_of_neighbour(hog, neighbour, seconds=2.0):
    """CPU time the neighbour's processes got over `seconds`, divided by the hog's."""
    hog_before, neighbour_before = cpu_seconds(hog.pids()), cpu_seconds(neighbour())
    time.sleep(seconds)
    return (cpu_seconds(neighbour()) - neighbour_before) / (cpu_seconds(hog.pids()) - hog_before)


# (a)
def test_a_hundred_busy_sessions_do_not_starve_the_submission_beside_them(make_group, run):
    """A hog runs 100 busy processes, each in its own session; the neighbour runs one per CPU, all on the
    same (at most two) CPUs, so that fair shares give both the same CPU time on any machine. Then the
    neighbour's processes are moved into the hog's cgroup: without a cgroup of its own, it gets about
    cpus/100 of the hog's time."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    busy = "setsid sh -c 'while :; do :; done' &"
    pinned = ["taskset", "-c", ",".join(map(str, cpus)), "sh", "-c"]
    hog, neighbour = make_group(pids=512), make_group()
    run(hog, [*pinned, f"for i in $(seq 100); do {busy} done; wait"], processes=512)
    run(neighbour, [*pinned, f"for i in $(seq {len(cpus)}); do {busy} done; wait"])
    wait_for(lambda: len(hog.pids()) >= 100 + 2 and len(neighbour.pids()) >= len(cpus) + 2, what="the busy processes")
    separate = share_of_neighbour(hog, neighbour.pids)
    neighbours_processes = neighbour.pids()
    for pid in neighbours_processes:
        hog.add(pid)
    shared = share_of_neighbour(hog, lambda: [p for p in hog.pids() if p in neighbours_processes])
    assert separate >= 0.4, f"beside 100 busy processes, a cgroup of its own got only {separate:.0%} of their CPU time"
    assert shared < 0.2, f"in one cgroup with the hog the neighbour still got {shared:.0%}: this test measures nothing"


# (b)
SCRATCH_ATTACK = """
import errno, os, time
written = 0
try:
    with open("big", "wb") as f:
        for _ in range(2048):                       # 2 GiB
            f.write(b"z" * (1 << 20)); f.flush(); written += 1
except OSError as e:
    print("bytes stopped", written, errno.errorcode[e.errno], flush=True)
made = 0
try:
    for made in range(200_000):
        open(f"/tmp/f{made}", "w").close()
except OSError as e:
    print("files stopped", made, errno.errorcode[e.errno], flush=True)
print("holding", flush=True)
time.sleep(120)
"""


def test_scratch_writes_stop_at_the_tmpfs_bounds_and_never_reach_the_host(make_group, run, tmp_path):
    group = make_group(memory_bytes=512 * MiB)
    sandboxed = run(group, python(SCRATCH_ATTACK), scratch_bytes=64 * MiB, scratch_inodes=1000)
    wait_for(lambda: b"holding" in sandboxed.stdout.head or sandboxed.poll() is not None)
    report = sandboxed.stdout.head.decode()
    stopped = dict(re.findall(r"(bytes|files) stopped (\d+ ENOSPC)", report))
    assert set(stopped) == {"bytes", "files"}, report + sandboxed.stderr.kept().decode()
    assert int(stopped["bytes"].split()[0]) <= 64 and int(stopped["files"].split()[0]) < 1000
    assert group.usage().memory_bytes >= 64 * MiB  # the tmpfs pages count against the submission's cap
    host_scratch = tmp_path / "sandbox0" / "scratch"
    assert list(host_scratch.iterdir()) == []
    assert str(host_scratch) not in Path("/proc/self/mountinfo").read_text()
    group.kill()
    wait_for(lambda: group.usage().memory_bytes < 16 * MiB, what="the tmpfs to go with the sandbox")


# (c)
MEMFD_ATTACK = """
import os
fd = os.memfd_create("hoard")
for mib in range(2048):                              # 2 GiB, never mapped: RLIMIT_AS does not see it
    os.write(fd, b"m" * (1 << 20))
    print(mib, flush=True)
print("wrote 2 GiB")
"""


def test_memfd_past_the_memory_cap_is_killed_and_reported(make_group, run):
    group = make_group(memory_bytes=256 * MiB)
    sandboxed = run(group, python(MEMFD_ATTACK))
    code = sandboxed.wait(60)
    output = sandboxed.stdout.kept().decode()
    assert code == 128 + 9 and "wrote 2 GiB" not in output, output[-300:]
    assert int(output.split()[-1]) < 256
    assert group.events().oom_kills >= 1
    assert group.events().problems()[0].startswith("cgroup kill: memory cap of 0.25 GB reached (")


# (d)
def test_a_flood_on_the_inherited_stderr_leaves_only_the_bound(make_group, run):
    flood = "import os\nfor _ in range(100): os.write(2, b'e' * (1 << 20))\nprint('done')"
    sandboxed = run(make_group(), python(flood))
    assert sandboxed.wait(60) == 0
    assert sandboxed.stdout.kept() == b"done\n"
    assert sandboxed.stderr.total_bytes == 100 * MiB
    assert len(sandboxed.stderr.kept()) <= 2 * 64 * 1024 + 100


# (e)
def test_nothing_in_the_sandbox_shows_its_host_paths(make_group, run, tmp_path):
    code = """
import os
print(repr(open("/proc/1/cmdline").read()))
for secret in ("/proc/1/environ", "/.sandbox-start"):
    try:
        open(secret).read(); print("READ", secret)
    except PermissionError:
        pass
print(open("/proc/self/mountinfo").read())
print(open("/proc/self/cgroup").read())
"""
    sandboxed = run(make_group(), python(code))
    assert sandboxed.wait(60) == 0
    seen = sandboxed.stdout.kept().decode()
    pid1 = seen.splitlines()[0]
    assert pid1.startswith("'bwrap\\x00--args\\x00") and pid1.endswith("\\x00sh\\x00/.sandbox-start\\x00'"), pid1
    assert "READ" not in seen
    host_scratch = tmp_path / "sandbox0" / "scratch"
    for host_path in (host_scratch, REPO / "cgan_lib", cgroups.PARENT_NAME):
        assert str(host_path) not in pid1
    assert str(host_scratch) not in seen and cgroups.PARENT_NAME not in seen


# (f)
FORK_BOMB = """
import errno, os, time
children = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(120); os._exit(0)
        children += 1
    except OSError as e:
        print("refused after", children, errno.errorcode[e.errno], flush=True)
        time.sleep(120)
"""


def test_the_pids_cap_stops_a_fork_bomb_and_says_so(make_group, run):
    group = make_group(pids=64)
    sandboxed = run(group, python(FORK_BOMB))
    wait_for(lambda: b"refused" in sandboxed.stdout.head or sandboxed.poll() is not None)
    assert "EAGAIN" in sandboxed.stdout.head.decode(), sandboxed.stderr.kept().decode()
    assert group.usage().pids <= 64
    events = group.events()
    assert events.pids_cap_hits >= 1 and "process cap of 64 reached" in events.problems()[0]
    killed = group.kill()
    assert len(killed) >= 60 and group.pids() == []
    assert sandboxed.wait(30) != 0


def test_passed_fds_reach_the_command_at_the_same_numbers(make_group, tmp_path):
    """The probe talks to the grader over two inherited pipes."""
    to_probe, from_probe = os.pipe(), os.pipe()
    code = f"import os\nrequest = os.read({to_probe[0]}, 100)\nos.write({from_probe[1]}, request.upper())"
    (tmp_path / "scratch").mkdir()
    command = launch.sandboxed_command(python(code), uid=next(TEST_UIDS), workdir=tmp_path / "work",
                                       scratch=tmp_path / "scratch", environ={}, cgroup=make_group())
    with launch.launch(command, pass_fds=(to_probe[0], from_probe[1])) as sandboxed:
        os.close(to_probe[0])
        os.close(from_probe[1])
        os.write(to_probe[1], b"ping")
        assert os.read(from_probe[0], 100) == b"PING"
        assert sandboxed.wait(30) == 0
    os.close(to_probe[1])
    os.close(from_probe[0])


def test_scratch_tmpfs_on_the_host_is_bounded_and_unmounted_even_after_an_error(isolation, tmp_path):
    folder = tmp_path / "scratch"
    folder.mkdir()
    with pytest.raises(OSError) as raised, scratch.ScratchTmpfs(folder, size_bytes=MiB, inodes=20):
        assert scratch.is_mount_point(folder) and sorted(p.name for p in folder.iterdir()) == ["home", "tmp"]
        (folder / "home" / "fill").write_bytes(b"x" * (2 * MiB))
    assert raised.value.errno == errno.ENOSPC
    assert not scratch.is_mount_point(folder) and list(folder.iterdir()) == []
