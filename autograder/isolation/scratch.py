"""The sandbox's writable scratch: a tmpfs with a size and a number of files, never the host's disk.

A tmpfs mounted with size= and nr_inodes= on the scratch folder: a write past either fails
with ENOSPC inside the sandbox. Its pages are charged to the memory cgroup of the process that
writes them (the submission's, see cgroups.py), so they count against the submission's memory cap.

The launcher (enter.py) mounts it in a mount namespace of the sandbox's own
(private_mount_namespace() first): the host never sees the mount, and it vanishes with the
sandbox's last process, even when the grader is killed. Inside it, two folders:

    <scratch>/home   the kernel's working directory and $HOME
    <scratch>/tmp    its /tmp

ScratchTmpfs is the same mount as a context manager in the caller's own namespace, for a grader
that wants the mount on the host (it unmounts on leaving, errors included).

Only the standard library, and little of it (no pathlib): enter.py imports this with `python -I -S`.
"""
import ctypes
import os

DEFAULT_BYTES = 1 << 30    # 1 GiB of files
DEFAULT_INODES = 20_000    # files, folders and links together
SUBFOLDERS = ("home", "tmp")
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
MNT_DETACH = 0x2
CLONE_NEWNS = 0x20000

_libc = ctypes.CDLL(None, use_errno=True)


class ScratchError(OSError):
    """The scratch tmpfs could not be mounted or unmounted; the message says where and why."""


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise ScratchError(code, f"{what}: {os.strerror(code)}")


def private_mount_namespace():
    """Give this (single-threaded) process a mount namespace of its own, whose mounts the host never sees."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS) (needs root, and a single thread)")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / a private mount")


def mount_tmpfs(path, size_bytes=DEFAULT_BYTES, inodes=DEFAULT_INODES, uid=0, mode=0o700):
    """Mount a tmpfs of at most `size_bytes` and `inodes` on `path`, owned by `uid`, with SUBFOLDERS in it."""
    options = f"size={int(size_bytes)},nr_inodes={int(inodes)},mode={mode:o},uid={uid},gid={uid}"
    _check(_libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()),
           f"mounting a tmpfs ({options}) on {path}")
    for name in SUBFOLDERS:
        folder = os.path.join(path, name)
        os.mkdir(folder, mode=0o700)
        os.chown(folder, uid, uid)


def unmount(path):
    """Unmount `path`; if something still uses it, detach it now (the kernel frees it when the last user goes)."""
    if _libc.umount2(os.fsencode(path), 0) != 0:
        _check(_libc.umount2(os.fsencode(path), MNT_DETACH), f"unmounting the scratch tmpfs at {path}")


def is_mount_point(path):
    """Whether something is mounted on `path` in this process's mount namespace."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class ScratchTmpfs:
    """`with ScratchTmpfs(folder, size_bytes, inodes, uid=...):` the bounded tmpfs mounted on `folder`."""

    def __init__(self, path, size_bytes=DEFAULT_BYTES, inodes=DEFAULT_INODES, uid=0, mode=0o700):
        self.path, self.size_bytes, self.inodes, self.uid, self.mode = path, size_bytes, inodes, uid, mode

    def __enter__(self):
        if is_mount_point(self.path):  # left mounted by a grader that died
            unmount(self.path)
        mount_tmpfs(self.path, self.size_bytes, self.inodes, self.uid, self.mode)
        return self

    def __exit__(self, *exc):
        unmount(self.path)

    def usage(self):
        """(bytes used, files used) of the tmpfs."""
        stats = os.statvfs(self.path)
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_files - stats.f_ffree
