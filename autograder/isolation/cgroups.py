"""A control group for each submission: an equal CPU share, a memory cap, a process cap, one kill.

A submission's processes live in cgroups of their own (autograder/run/task.py makes two: one for
its notebook's kernel, one for its tests' probe process, which run at the same time), created
under the grader's own cgroup (read from /proc/self/cgroup), beside the other submissions':

    cpu      an equal share between the submissions graded at once (v1 cpu.shares, v2 cpu.weight),
             and optionally a quota of cores (cpu.cfs_quota_us / cpu.max)
    memory   a cap on every page the group touches: anonymous, page cache, shmem, tmpfs, memfd
             (v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes; v2 memory.max, with
             memory.swap.max = 0 and memory.oom.group = 1, so one OOM kill takes the whole group)
    pids     a cap on processes and threads together (pids.max): a fork bomb stops there

Both cgroup versions work: v2 (the unified hierarchy, /sys/fs/cgroup with cgroup.controllers)
when it offers cpu, memory and pids to the grader's cgroup, else the v1 hierarchies cpu,
cpuacct, memory, pids (and freezer, for a kill that no fork can outrun).

    group = SubmissionCgroup.create("alice", memory_bytes=8 << 30, pids=256, cpu_weight=100)
    env[PROCS_ENV] = group.procs_env()      # a launcher calls join() on it, then execs (enter.py)
    ...
    group.events().problems()               # ["cgroup kill: memory cap of 8 GB reached (1 OOM kill)"]
    group.remove()                          # kills what is left, by PID from cgroup.procs

Only the standard library: enter.py imports this with `python -I -S`.
"""
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PARENT_NAME = "cgan-grading"        # the grader's submissions live in <own cgroup>/cgan-grading/<name>
SUPERVISOR_LEAF = "cgan-supervisor"  # v2: where the grader moves its own cgroup's processes, if it must
PROCS_ENV = "CGAN_CGROUP_PROCS"     # the cgroup.procs files a launcher joins, os.pathsep between them
REQUIRED = ("cpu", "memory", "pids")
V1_OPTIONAL = ("cpuacct", "freezer")
DEFAULT_CPU_WEIGHT = 100            # v2's default; v1 cpu.shares = weight * 1024 / 100
CFS_PERIOD_US = 100_000
KILL_TIMEOUT_S = 5.0
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
WHAT_TO_DO = ("each submission needs a cgroup of its own (CPU share, memory cap, process cap). Run the grader "
              "as root on Linux with either cgroup v2 whose cpu, memory and pids controllers reach the "
              "grader's cgroup (e.g. `systemd-run --scope -p Delegate=yes ...`, or a container started with "
              "--cgroupns=private and a writable /sys/fs/cgroup), or the cgroup v1 hierarchies cpu, memory "
              "and pids mounted under /sys/fs/cgroup; or grade without the sandbox: --no-sandbox")


class CgroupError(RuntimeError):
    """cgroups cannot be used here; the message says what is missing and what to do."""


def make_directory(path):
    path.mkdir()  # the kernel fills a new cgroup directory with its control files (tests swap these two out)


def remove_directory(path):
    os.rmdir(path)  # and takes them away with it


def _ensure_directory(path):
    try:
        make_directory(path)
    except FileExistsError:
        pass  # another grader made it first


# --- where this process's cgroups are --------------------------------------------------------------

def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts(mountinfo_text):
    """[(fstype, mount root, mount point, super options)] of the cgroup filesystems in mountinfo."""
    found = []
    for line in mountinfo_text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((tail[0], _unescape(fields[3]), _unescape(fields[4]), set(tail[2].split(","))))
    return found


def own_paths(self_cgroup_text):
    """{controller: path} from /proc/self/cgroup; the v2 path under the key ''."""
    paths = {}
    for line in self_cgroup_text.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _directory(mount_root, mount_point, path):
    """The directory of cgroup `path` in a mount of the hierarchy; None when the mount does not show it."""
    relative = os.path.relpath(path, mount_root)
    if relative.startswith(".."):
        return None
    return Path(mount_point) / relative if relative != "." else Path(mount_point)


def _v2_base(mountinfo_text, self_cgroup_text):
    """The grader's v2 cgroup directory if v2 offers cpu, memory and pids there; else (None, why not)."""
    path = own_paths(self_cgroup_text).get("")
    v2 = [(root, point) for fstype, root, point, _ in mounts(mountinfo_text) if fstype == "cgroup2"]
    if path is None or not v2:
        return None, "no cgroup v2 hierarchy is mounted"
    directory = _directory(*v2[0], path)
    if directory is None or not directory.is_dir():
        return None, f"this process's v2 cgroup {path} is not visible under {v2[0][1]}"
    if directory.name == SUPERVISOR_LEAF:  # an earlier grader moved itself here: use the cgroup above
        directory = directory.parent
    offered = (directory / "cgroup.controllers").read_text().split()
    missing = [c for c in REQUIRED if c not in offered]
    if missing:
        return None, (f"cgroup v2 at {directory} lacks the controller(s) {', '.join(missing)} "
                      f"(it offers: {' '.join(offered) or 'none'})")
    return directory, None


def _v1_directories(mountinfo_text, self_cgroup_text):
    """{controller: the grader's v1 cgroup directory}, for the controllers mounted; and what is missing."""
    paths, directories = own_paths(self_cgroup_text), {}
    for fstype, root, point, options in mounts(mountinfo_text):
        if fstype != "cgroup":
            continue
        for controller in (*REQUIRED, *V1_OPTIONAL):
            if controller in options and controller in paths and controller not in directories:
                directory = _directory(root, point, paths[controller])
                if directory is not None and directory.is_dir():
                    directories[controller] = directory
    missing = [c for c in REQUIRED if c not in directories]
    return directories, (f"cgroup v1 lacks the hierarchy(ies) {', '.join(missing)}" if missing else None)


def layout(mountinfo_text=None, self_cgroup_text=None):
    """(1 or 2, {controller: directory of the grader's own cgroup}); v2's single directory under ''.
    Raises CgroupError naming what is missing and what to do."""
    mountinfo_text = mountinfo_text if mountinfo_text is not None else Path("/proc/self/mountinfo").read_text()
    self_cgroup_text = self_cgroup_text if self_cgroup_text is not None else Path("/proc/self/cgroup").read_text()
    base, v2_problem = _v2_base(mountinfo_text, self_cgroup_text)
    if base is not None:
        return 2, {"": base}
    directories, v1_problem = _v1_directories(mountinfo_text, self_cgroup_text)
    if v1_problem is None:
        return 1, directories
    raise CgroupError(f"no usable cgroups: {v2_problem}; {v1_problem}. {WHAT_TO_DO}")


# --- small file helpers ------------------------------------------------------------------------------

def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _read_fields(path):
    """{key: int} of a flat-keyed control file ("oom_kill 3"); {} when it does not exist."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {key: int(value) for key, _, value in (line.partition(" ") for line in lines) if value.strip().isdigit()}


def _read_int(path):
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid):
    """Whether `pid` runs (a zombie has already left its cgroup; a fake cgroupfs may still list it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def join(procs_files, pid=None):
    """Put `pid` (default: this process) into the cgroup whose cgroup.procs files are given
    (a list, or PROCS_ENV's os.pathsep-separated text). Its later children stay there."""
    if isinstance(procs_files, str):
        procs_files = [f for f in procs_files.split(os.pathsep) if f]
    for procs in procs_files:
        _write(procs, pid or os.getpid())


# --- v2: the grader's cgroup must pass cpu, memory and pids on to its children ----------------------

def _enable_controllers(directory):
    """Make `directory` pass cpu, memory and pids to its children. A non-root v2 cgroup with processes
    of its own cannot (EBUSY: "no internal processes"): then they move to a leaf, SUPERVISOR_LEAF, first."""
    enabled = (directory / "cgroup.subtree_control").read_text().split()
    wanted = " ".join(f"+{c}" for c in REQUIRED if c not in enabled)
    if not wanted:
        return
    try:
        _write(directory / "cgroup.subtree_control", wanted)
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise
        leaf = directory / SUPERVISOR_LEAF
        _ensure_directory(leaf)
        for pid in (directory / "cgroup.procs").read_text().split():
            try:
                _write(leaf / "cgroup.procs", pid)
            except ProcessLookupError:
                continue  # it ended meanwhile
        _write(directory / "cgroup.subtree_control", wanted)


# --- one submission's cgroup --------------------------------------------------------------------------

@dataclass
class CgroupEvents:
    """What the caps did: counts since the group was created."""
    memory_bytes: int
    pids_cap: int
    oom_kills: int = 0          # processes the OOM killer ended because the memory cap was reached
    memory_cap_hits: int = 0    # times a charge reached the cap (v1 failcnt, v2 memory.events max)
    pids_cap_hits: int = 0      # forks refused at the pids cap

    def problems(self):
        """Lines for problems.csv, one per cap that was reached; [] when none was."""
        lines = []
        if self.oom_kills:
            lines.append(f"cgroup kill: memory cap of {self.memory_bytes / 1024**3:g} GB reached "
                         f"({self.oom_kills} OOM kill{'s' if self.oom_kills > 1 else ''})")
        if self.pids_cap_hits:
            lines.append(f"cgroup: process cap of {self.pids_cap} reached ({self.pids_cap_hits} forks refused)")
        return lines


@dataclass
class CgroupUsage:
    cpu_seconds: float | None   # CPU time of every process that ran in the group (None: no cpuacct in v1)
    memory_bytes: int | None    # charged now
    memory_peak_bytes: int | None
    pids: int | None            # processes and threads now


class SubmissionCgroup:
    """One submission's cgroup (v1: one directory per hierarchy; v2: one directory)."""

    def __init__(self, name, version, directories, memory_bytes, pids):
        self.name, self.version, self.directories = name, version, directories
        self.memory_bytes, self.pids_cap = memory_bytes, pids

    @classmethod
    def create(cls, name, *, memory_bytes, pids, cpu_weight=DEFAULT_CPU_WEIGHT, cpu_cores=None, base=None):
        """Create <grader's cgroup>/cgan-grading/<name> with its caps. `cpu_weight` is v2's 1..10000
        (100 = an equal share); `cpu_cores`, if given, caps the group at that many cores' time.
        `base` = (version, {controller: directory}) overrides the layout read from /proc (tests)."""
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"cgroup name {name!r}: letters, digits, '_', '.', '-' only, at most 100")
        version, own = base or layout()
        parents = {}
        for controller, directory in own.items():
            if version == 2:
                _enable_controllers(directory)
            parent = directory / PARENT_NAME
            _ensure_directory(parent)
            if version == 2:
                _enable_controllers(parent)
            parents[controller] = parent
        group = cls(name, version, {c: p / name for c, p in parents.items()}, memory_bytes, pids)
        created = []
        try:
            group._make_directories(created)
            group._set_caps(cpu_weight, cpu_cores)
        except BaseException:
            for directory in created:  # only its own: an existing group may be another grader's
                remove_directory(directory)
            raise
        return group

    def _make_directories(self, created):
        for directory in self.unique_directories():
            try:
                make_directory(directory)
                created.append(directory)
            except FileExistsError:  # left by a grader that died: replace it, unless something runs in it
                if any(_alive(int(pid)) for pid in (directory / "cgroup.procs").read_text().split()):
                    raise CgroupError(f"the cgroup {directory} exists and has processes: is another grader "
                                      f"grading {self.name!r}? Give each submission a unique name") from None
                remove_directory(directory)  # its counters (OOM kills, ...) belong to the old grading
                make_directory(directory)
                created.append(directory)

    def _set_caps(self, cpu_weight, cpu_cores):
        if self.version == 2:
            d = self.directories[""]
            _write(d / "memory.max", self.memory_bytes)
            if (d / "memory.swap.max").exists():  # absent where the kernel has no swap accounting
                _write(d / "memory.swap.max", 0)
            _write(d / "memory.oom.group", 1)
            _write(d / "pids.max", self.pids_cap)
            _write(d / "cpu.weight", cpu_weight)
            if cpu_cores:
                _write(d / "cpu.max", f"{int(cpu_cores * CFS_PERIOD_US)} {CFS_PERIOD_US}")
            return
        memory, cpu = self.directories["memory"], self.directories["cpu"]
        _write(memory / "memory.limit_in_bytes", self.memory_bytes)
        if (memory / "memory.memsw.limit_in_bytes").exists():  # memory + swap: swap cannot lift the cap
            _write(memory / "memory.memsw.limit_in_bytes", self.memory_bytes)
        else:
            _write(memory / "memory.swappiness", 0)
        _write(self.directories["pids"] / "pids.max", self.pids_cap)
        _write(cpu / "cpu.shares", max(2, cpu_weight * 1024 // DEFAULT_CPU_WEIGHT))
        if cpu_cores:
            _write(cpu / "cpu.cfs_period_us", CFS_PERIOD_US)
            _write(cpu / "cpu.cfs_quota_us", int(cpu_cores * CFS_PERIOD_US))

    def unique_directories(self):
        return list(dict.fromkeys(self.directories.values()))  # v1 co-mounted controllers share one

    # -- putting processes in -------------------------------------------------------------------------

    @property
    def procs_files(self):
        """The cgroup.procs files a process joins (one per v1 hierarchy)."""
        return [str(d / "cgroup.procs") for d in self.unique_directories()]

    def procs_env(self):
        """PROCS_ENV's value: a launcher given it calls join() before exec'ing the sandbox."""
        return os.pathsep.join(self.procs_files)

    def add(self, pid):
        join(self.procs_files, pid)

    def pids(self):
        """PIDs of the live processes in the group (host PID namespace)."""
        listed = set()
        for directory in self.unique_directories():
            try:
                listed.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return sorted(pid for pid in listed if _alive(pid))

    # -- reading what happened ------------------------------------------------------------------------

    def events(self):
        if self.version == 2:
            d = self.directories[""]
            memory = _read_fields(d / "memory.events")
            return CgroupEvents(self.memory_bytes, self.pids_cap, oom_kills=memory.get("oom_kill", 0),
                                memory_cap_hits=memory.get("max", 0),
                                pids_cap_hits=_read_fields(d / "pids.events").get("max", 0))
        memory = self.directories["memory"]
        return CgroupEvents(self.memory_bytes, self.pids_cap,
                            oom_kills=_read_fields(memory / "memory.oom_control").get("oom_kill", 0),
                            memory_cap_hits=_read_int(memory / "memory.failcnt") or 0,
                            pids_cap_hits=_read_fields(self.directories["pids"] / "pids.events").get("max", 0))

    def usage(self):
        if self.version == 2:
            d = self.directories[""]
            usec = _read_fields(d / "cpu.stat").get("usage_usec")
            return CgroupUsage(None if usec is None else usec / 1e6, _read_int(d / "memory.current"),
                               _read_int(d / "memory.peak"), _read_int(d / "pids.current"))
        cpuacct = self.directories.get("cpuacct")
        nanoseconds = _read_int(cpuacct / "cpuacct.usage") if cpuacct else None
        memory = self.directories["memory"]
        return CgroupUsage(None if nanoseconds is None else nanoseconds / 1e9,
                           _read_int(memory / "memory.usage_in_bytes"), _read_int(memory / "memory.max_usage_in_bytes"),
                           _read_int(self.directories["pids"] / "pids.current"))

    # -- ending ---------------------------------------------------------------------------------------

    def _freezer(self):
        """(control file, its value when frozen, when thawed, whether frozen now); None without a freezer."""
        if self.version == 2:
            d = self.directories[""]
            return d / "cgroup.freeze", "1", "0", lambda: _read_fields(d / "cgroup.events").get("frozen") == 1
        if "freezer" in self.directories:
            state = self.directories["freezer"] / "freezer.state"
            return state, "FROZEN", "THAWED", lambda: state.read_text().strip() == "FROZEN"
        return None

    def _freeze(self, frozen):
        """Stop (or restart) every process of the group, so that none forks while the group is killed;
        waits up to a second for the freeze to take."""
        freezer = self._freezer()
        if freezer is None or not freezer[0].exists():
            return
        control, frozen_value, thawed_value, is_frozen = freezer
        _write(control, frozen_value if frozen else thawed_value)
        deadline = time.monotonic() + 1.0
        while frozen and not is_frozen() and time.monotonic() < deadline:
            time.sleep(0.005)

    def kill(self, timeout=KILL_TIMEOUT_S):
        """SIGKILL every process in the group until none is left: v2's cgroup.kill where the kernel has it,
        and always by PID from the group's cgroup.procs, frozen first. Returns the PIDs signalled;
        raises CgroupError if some still run after `timeout` seconds."""
        signalled, deadline = set(), time.monotonic() + timeout
        kill_file = self.directories[""] / "cgroup.kill" if self.version == 2 else None
        while self.pids():
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroup {self.name}: processes {self.pids()} still run {timeout} s after SIGKILL")
            if kill_file is not None and kill_file.exists():
                _write(kill_file, 1)
            self._freeze(True)
            try:
                for pid in self.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                        signalled.add(pid)
                    except ProcessLookupError:
                        continue
            finally:
                self._freeze(False)  # a frozen process dies of its SIGKILL only once thawed
            time.sleep(0.01)
        return sorted(signalled)

    def remove(self, timeout=KILL_TIMEOUT_S):
        """Kill what is left and delete the group's directories (idempotent)."""
        if any(d.is_dir() for d in self.unique_directories()):
            self.kill(timeout)
        deadline = time.monotonic() + timeout
        for directory in self.unique_directories():
            while directory.is_dir():
                try:
                    remove_directory(directory)
                except FileNotFoundError:
                    break
                except OSError as error:  # EBUSY while the last processes finish exiting
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def unavailable_reason():
    """None when submissions can get cgroups here, else what is missing and what to do (one message)."""
    if os.geteuid() != 0:
        return f"creating cgroups needs root: {WHAT_TO_DO}"
    try:
        probe = SubmissionCgroup.create(f"probe-{os.getpid()}", memory_bytes=64 << 20, pids=8)
    except CgroupError as error:
        return str(error)
    except OSError as error:
        return f"cannot create a cgroup ({error}): {WHAT_TO_DO}"
    probe.remove()
    return None
