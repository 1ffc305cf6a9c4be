"""cgroups.py against a fake cgroupfs in tmp: the v2 and v1 code paths, needing neither root nor cgroups.

The fake is folders and files: make_directory fills a new cgroup with the control files the kernel
would, remove_directory takes it away. It checks what cgroups.py writes and how it reads events;
tests/test_isolation_sandbox.py checks what the real kernel does with it.
"""
import errno
import os
import shutil
import subprocess

import pytest

from autograder.isolation import cgroups

V2_FILES = {"cgroup.procs": "", "cgroup.subtree_control": "", "memory.max": "max", "memory.swap.max": "max",
            "memory.oom.group": "0", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
            "pids.max": "max", "pids.events": "max 0\n", "cpu.weight": "100", "cpu.max": "max 100000",
            "cpu.stat": "usage_usec 0\n", "memory.current": "0", "pids.current": "0"}
V1_FILES = {"cgroup.procs": "", "memory.memsw.limit_in_bytes": "9223372036854771712"}


def fake_v2_mkdir(path):
    path.mkdir()
    offered = (path.parent / "cgroup.subtree_control").read_text().replace("+", "").split()
    (path / "cgroup.controllers").write_text(" ".join(offered))
    for name, text in V2_FILES.items():
        (path / name).write_text(text)


def fake_v1_mkdir(path):
    path.mkdir()
    for name, text in V1_FILES.items():
        (path / name).write_text(text)


@pytest.fixture
def v2(tmp_path, monkeypatch):
    """A fake v2 hierarchy at tmp/fs whose grader's cgroup is /grader.slice/grader; its layout."""
    monkeypatch.setattr(cgroups, "make_directory", fake_v2_mkdir)
    monkeypatch.setattr(cgroups, "remove_directory", shutil.rmtree)
    root = tmp_path / "fs"
    root.mkdir()
    (root / "cgroup.subtree_control").write_text("+cpu +memory +pids")
    (root / "grader.slice").mkdir()
    (root / "grader.slice" / "cgroup.subtree_control").write_text("+cpu +memory +pids")
    fake_v2_mkdir(root / "grader.slice" / "grader")
    mountinfo = f"30 23 0:26 / {root} rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n"
    return cgroups.layout(mountinfo, "0::/grader.slice/grader\n")


def test_v2_is_found_in_the_graders_own_cgroup(v2, tmp_path):
    assert v2 == (2, {"": tmp_path / "fs" / "grader.slice" / "grader"})


def test_v2_caps_are_written(v2, tmp_path):
    group = cgroups.SubmissionCgroup.create("alice", memory_bytes=2 << 30, pids=100, cpu_weight=200, cpu_cores=1.5,
                                            base=v2)
    grader = tmp_path / "fs" / "grader.slice" / "grader"
    folder = grader / cgroups.PARENT_NAME / "alice"
    written = {name: (folder / name).read_text() for name in V2_FILES}
    assert written["memory.max"] == str(2 << 30) and written["memory.swap.max"] == "0"
    assert written["memory.oom.group"] == "1" and written["pids.max"] == "100"
    assert written["cpu.weight"] == "200" and written["cpu.max"] == "150000 100000"
    for parent in (grader, grader / cgroups.PARENT_NAME):  # both pass the controllers down
        assert (parent / "cgroup.subtree_control").read_text().split() == ["+cpu", "+memory", "+pids"]
    assert group.procs_env() == str(folder / "cgroup.procs")


def test_v2_events_become_problem_lines(v2):
    group = cgroups.SubmissionCgroup.create("bob", memory_bytes=2 << 30, pids=100, base=v2)
    folder = group.directories[""]
    assert group.events().problems() == []
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 41\noom 2\noom_kill 2\n")
    (folder / "pids.events").write_text("max 7\n")
    events = group.events()
    assert (events.oom_kills, events.memory_cap_hits, events.pids_cap_hits) == (2, 41, 7)
    assert events.problems() == ["cgroup kill: memory cap of 2 GB reached (2 OOM kills)",
                                 "cgroup: process cap of 100 reached (7 forks refused)"]


def test_v2_kill_is_by_pid_from_the_procs_file(v2):
    group = cgroups.SubmissionCgroup.create("carol", memory_bytes=1 << 30, pids=10, base=v2)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (group.directories[""] / "cgroup.procs").write_text(f"{sleeper.pid}\n")
        assert group.pids() == [sleeper.pid]
        group.remove()
        assert sleeper.wait(timeout=5) == -9
        assert not group.directories[""].exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_v2_cgroup_with_processes_moves_them_to_a_leaf(v2, tmp_path, monkeypatch):
    """v2 forbids a non-root cgroup with processes from passing controllers down (EBUSY)."""
    grader = tmp_path / "fs" / "grader.slice" / "grader"
    (grader / "cgroup.procs").write_text("4242\n")
    real_write, refused = cgroups._write, []

    def write(path, value):
        if path == grader / "cgroup.subtree_control" and not (grader / cgroups.SUPERVISOR_LEAF).exists():
            refused.append(value)
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_write(path, value)

    monkeypatch.setattr(cgroups, "_write", write)
    cgroups.SubmissionCgroup.create("dave", memory_bytes=1 << 30, pids=10, base=v2)
    assert refused == ["+cpu +memory +pids"]
    assert (grader / cgroups.SUPERVISOR_LEAF / "cgroup.procs").read_text() == "4242"
    assert (grader / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"


def test_a_left_over_group_is_replaced_but_one_in_use_is_left_alone(v2):
    group = cgroups.SubmissionCgroup.create("frank", memory_bytes=1 << 30, pids=10, base=v2)
    folder = group.directories[""]
    (folder / "memory.events").write_text("oom_kill 3\n")
    (folder / "cgroup.procs").write_text(f"{os.getpid()}\n")  # a live process: another grader's
    with pytest.raises(cgroups.CgroupError, match="exists and has processes"):
        cgroups.SubmissionCgroup.create("frank", memory_bytes=1 << 30, pids=10, base=v2)
    assert (folder / "memory.events").read_text() == "oom_kill 3\n"
    (folder / "cgroup.procs").write_text("")  # its grader died: the group is stale
    again = cgroups.SubmissionCgroup.create("frank", memory_bytes=1 << 30, pids=10, base=v2)
    assert again.events().oom_kills == 0


def test_v1_hierarchies_are_found_co_mounted_or_not(tmp_path):
    mountinfo, self_cgroup = "", ""
    for number, (mount, controllers, path) in enumerate([("cpu,cpuacct", "cpu,cpuacct", "/"),
                                                         ("memory", "memory", "/jobs/7"),
                                                         ("pids", "pids", "/"), ("systemd", "name=systemd", "/")]):
        (tmp_path / mount / path.strip("/")).mkdir(parents=True, exist_ok=True)
        mountinfo += f"{40 + number} 31 0:{29 + number} / {tmp_path / mount} rw - cgroup cgroup rw,{controllers}\n"
        self_cgroup += f"{number}:{controllers}:{path}\n"
    mountinfo += f"50 31 0:50 / {tmp_path / 'unified'} rw - cgroup2 cgroup2 rw\n"  # hybrid: v2 offers no controller
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    self_cgroup += "0::/\n"
    version, directories = cgroups.layout(mountinfo, self_cgroup)
    assert version == 1
    assert directories == {"cpu": tmp_path / "cpu,cpuacct", "cpuacct": tmp_path / "cpu,cpuacct",
                           "memory": tmp_path / "memory" / "jobs" / "7", "pids": tmp_path / "pids"}


def test_v1_caps_are_written(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "make_directory", fake_v1_mkdir)
    monkeypatch.setattr(cgroups, "remove_directory", shutil.rmtree)
    own = {name: tmp_path / name for name in ("cpu", "cpuacct", "memory", "pids")}
    for folder in own.values():
        folder.mkdir()
    group = cgroups.SubmissionCgroup.create("erin", memory_bytes=3 << 30, pids=50, cpu_weight=200, cpu_cores=2,
                                            base=(1, own))
    folder = {name: path / cgroups.PARENT_NAME / "erin" for name, path in own.items()}
    assert (folder["memory"] / "memory.limit_in_bytes").read_text() == str(3 << 30)
    assert (folder["memory"] / "memory.memsw.limit_in_bytes").read_text() == str(3 << 30)
    assert (folder["pids"] / "pids.max").read_text() == "50"
    assert (folder["cpu"] / "cpu.shares").read_text() == "2048"
    assert (folder["cpu"] / "cpu.cfs_quota_us").read_text() == "200000"
    assert len(group.procs_files) == 4
    group.remove()
    assert not any(path.exists() for path in folder.values())


def test_without_cgroups_one_message_says_what_is_missing_and_what_to_do():
    with pytest.raises(cgroups.CgroupError) as raised:
        cgroups.layout("22 1 0:20 / /proc rw - proc proc rw\n", "0::/\n")
    message = str(raised.value)
    assert "no cgroup v2 hierarchy is mounted" in message
    assert "cgroup v1 lacks the hierarchy(ies) cpu, memory, pids" in message
    assert "Delegate=yes" in message and "--no-sandbox" in message


def test_join_writes_the_pid_to_every_procs_file(tmp_path):
    files = [tmp_path / "a.procs", tmp_path / "b.procs"]
    cgroups.join(":".join(map(str, files)), pid=1234)
    assert [f.read_text() for f in files] == ["1234", "1234"]


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 101])
def test_cgroup_names_are_checked(name):
    with pytest.raises(ValueError):
        cgroups.SubmissionCgroup.create(name, memory_bytes=1, pids=1, base=(2, {}))
