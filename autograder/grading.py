"""nbgrader configured for grading one student in a private course folder, and the worker that does it.

The pipeline (autograder.pipeline) starts one worker process per student:

    python -m autograder.grading <job.json>

The worker autogrades the student's submission against its own copy of the gradebook,
writes feedback, and writes its result to result.json beside the job file. nbgrader is configured here, in code, on top
of the lab's autograder/nbgrader_config.py.
"""
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

# jsonschema (via nbformat) compiles an IRI grammar when it finds rfc3987_syntax: 1.4 s of every
# worker's start, for a format check nothing here uses. Without the module it skips that check.
sys.modules.setdefault("rfc3987_syntax", None)

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.apps import NbGraderAPI
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, GetGrades, SaveAutoGrades
from traitlets.config import Config, PyFileConfigLoader

from autograder.gradebook import zero_automatic_scores
from autograder.preprocessors import BoundedExecute, HideHiddenTests, LimitOutput, NoPartialCredit, StderrIsNotScored

REPO = Path(__file__).resolve().parent.parent
KERNEL_NAME = "cgan-grading"


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
    sandbox: bool = True            # run the kernel in autograder/sandbox.py's bubblewrap sandbox

    def kernel_environment(self):
        return {"CGAN_KERNEL_MEMORY": str(int(self.memory_gb * 1024**3)),
                "CGAN_KERNEL_CPU": str(self.notebook_timeout * self.threads + 30),
                "CGAN_KERNEL_FILE_SIZE": str(self.max_file_mb * 1024**2),
                "CGAN_KERNEL_PROCESSES": str(self.processes),
                "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}


def notebook_name(assignment):
    """The assignment's one notebook, e.g. 'cgan' for solutions/cgan/cgan.ipynb."""
    notebooks = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"solutions/{assignment}/ must hold exactly one notebook, it holds "
                         f"{[p.name for p in notebooks] or 'none'}")
    return notebooks[0].stem


def nbgrader_config(root, db_url, limits=Limits()):
    """The lab's nbgrader configuration, for a course folder `root` and gradebook `db_url`."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "autograder")).load_config()
    config.merge(Config({
        "CourseDirectory": {"root": str(root), "db_url": db_url,
                            "source_directory": str(REPO / "solutions")},
        "Autograde": {"autograde_preprocessors": [
            BoundedExecute, StderrIsNotScored, ClearMetadataPreprocessor, LimitOutput, NoPartialCredit,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]},
        "Execute": {"timeout": limits.cell_timeout, "kernel_name": KERNEL_NAME},
        "KernelManager": {"transport": "ipc"},  # Unix sockets: the sandbox has no network, not even loopback
        "BoundedExecute": {"max_stream_chars": limits.max_output_chars},
        "GenerateFeedback": {"preprocessors": [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]},
        "NbGraderAPI": {"log_level": "INFO"},
    }))
    return config


def install_kernelspec(jupyter_dir):
    """Write the `cgan-grading` kernelspec under `jupyter_dir` (put it on JUPYTER_PATH)."""
    spec = jupyter_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(REPO / "autograder" / "kernel.py"), "-f", "{connection_file}"],
        "display_name": "Python 3 (CGAN lab grading)", "language": "python",
        # a signal to the launched process would reach bwrap, not the kernel inside: ask the kernel itself
        "interrupt_mode": "message"}, indent=1))
    return jupyter_dir


def record_assignment(db_url, assignment, scratch):
    """Store the assignment (cells, hidden tests, points) in the gradebook at `db_url`."""
    scratch.mkdir(parents=True, exist_ok=True)
    config = nbgrader_config(scratch, db_url)
    config.CourseDirectory.release_directory = str(scratch / "release")
    result = NbGraderAPI(config=config).generate_assignment(assignment, force=True, create=True)
    shutil.rmtree(scratch / "release", ignore_errors=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not record assignment {assignment!r}:\n{result.get('log', '')}{result.get('error', '')}")


@dataclass
class Job:
    """One student's grading, as the pipeline hands it to a worker process."""
    root: str            # the private course folder: submitted/, autograded/, feedback/
    db_url: str          # the private gradebook
    assignment: str
    student: str
    withhold_automatic: bool  # tampering was found: automatic points to 0, for review
    limits: dict


def run(job):
    """Autograde and write feedback for one student; the result as a dict."""
    config = nbgrader_config(Path(job.root), job.db_url, Limits(**job.limits))
    # The kernel's sockets: an absolute path (jupyter_client's default for ipc is relative to the
    # working directory, which differs between nbgrader and the kernel), in the folder the
    # sandbox shares with the kernel (the pipeline points TMPDIR, hence the connection file, there too).
    config.KernelManager.ip = str(Path(job.root) / "runtime" / "kernel")
    api = NbGraderAPI(config=config)
    graded = api.autograde(job.assignment, job.student, force=True, create=True)
    result = {"autograded": graded["success"], "log": graded.get("log", "") + graded.get("error", "")}
    if graded["success"]:
        if job.withhold_automatic:
            zero_automatic_scores(job.db_url, job.assignment, job.student)
        feedback = api.generate_feedback(job.assignment, job.student, force=True)
        result["feedback"] = feedback["success"]
        result["log"] += feedback.get("log", "") + feedback.get("error", "")
    return result


if __name__ == "__main__":  # python -m autograder.grading job.json  ->  result.json beside it
    job_file = Path(sys.argv[1])
    result = run(Job(**json.loads(job_file.read_text())))
    (job_file.parent / "result.json").write_text(json.dumps(result))

