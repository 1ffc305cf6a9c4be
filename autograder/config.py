"""Constants and limits of the autograder, each defined once.

    REPO               the repository (solutions/, assignments/, cgan_lib/)
    DEFAULT_WORKSPACE  where grading writes, unless $CGAN_GRADING_DIR or --workspace says otherwise
    Limits             the bounds on one submission's grading (the CLI's options set them)
"""
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKSPACE = REPO / "out" / "grading"
KERNEL_NAME = "cgan-grading"  # the kernelspec grading runs notebooks with (autograder/isolation/kernel.py)


def workspace_path(path=None):
    """The grading workspace: `path`, else $CGAN_GRADING_DIR, else DEFAULT_WORKSPACE."""
    return Path(path or os.environ.get("CGAN_GRADING_DIR") or DEFAULT_WORKSPACE).resolve()


def db_url(path):
    """The SQLAlchemy URL of the gradebook file at `path`."""
    return f"sqlite:///{path}"


@dataclass
class Limits:
    """Bounds on one submission's grading; the CLI's options set them."""
    cell_timeout: int = 120         # seconds per cell, then the cell is interrupted (0 for it)
    notebook_timeout: int = 600     # seconds for the whole submission, then it is stopped (0)
    memory_gb: float = 8.0          # address space of the kernel; torch alone maps 3.4 GB
    max_output_chars: int = 1_000_000  # of stdout, and of stderr, kept per cell
    max_file_mb: int = 512          # largest file the kernel may write
    threads: int = 1                # torch/OpenMP threads of the kernel
    processes: int = 256            # processes and threads of a sandboxed kernel (a fork bomb stops there)
    scratch_mb: int = 1024          # the sandbox's scratch tmpfs (its working directory and /tmp)
    scratch_files: int = 20_000     # files and folders in it
    sandbox: bool = True            # run students' code in the bubblewrap sandbox (autograder/isolation/)

    def kernel_environment(self):
        return {"CGAN_KERNEL_MEMORY": str(int(self.memory_gb * 1024**3)),
                "CGAN_KERNEL_CPU": str(self.notebook_timeout * self.threads + 30),
                "CGAN_KERNEL_FILE_SIZE": str(self.max_file_mb * 1024**2),
                "CGAN_KERNEL_PROCESSES": str(self.processes),
                "CGAN_SCRATCH_BYTES": str(self.scratch_mb * 1024**2),
                "CGAN_SCRATCH_INODES": str(self.scratch_files),
                "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
