"""nbgrader configured for the lab: the configuration object, the grading kernelspec, the assignment record.

nbgrader is configured here, in code, on top of the lab's autograder/nbgrader_config.py.
"""
import json
import shutil
import sys
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.apps import NbGraderAPI
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, GetGrades, SaveAutoGrades
from traitlets.config import Config, PyFileConfigLoader

from autograder.config import KERNEL_NAME, REPO, Limits
from autograder.reports.feedback_exporter import FEEDBACK_PREPROCESSORS, feedback_config
from autograder.scoring.judging import JudgeTests, ShowVerdicts
from autograder.scoring.output_limits import OUTPUT_LIMIT_PREPROCESSORS, output_limits_config
from autograder.scoring.preprocessors import BoundedExecute, HideHiddenTests, LimitOutput


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
        # The verdict first, outside the kernel; then the notebook runs (for feedback) without its tests;
        # then each test cell shows its verdict, which nbgrader scores; then every output is capped.
        "Autograde": {"autograde_preprocessors": [
            JudgeTests, BoundedExecute, ShowVerdicts, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, *OUTPUT_LIMIT_PREPROCESSORS, AssignLatePenalties, CheckCellMetadata]},
        "JudgeTests": {"cell_timeout": limits.cell_timeout, "report_path": str(Path(root) / "judgement.json")},
        # Once the last cell has answered, the kernel is killed: a graceful exit (its atexit hooks, torch's
        # teardown) took 1.3 s per submission and runs nothing grading needs.
        "Execute": {"timeout": limits.cell_timeout, "kernel_name": KERNEL_NAME, "shutdown_kernel": "immediate"},
        "KernelManager": {"transport": "ipc"},  # Unix sockets: the sandbox has no network, not even loopback
        "BoundedExecute": {"max_stream_chars": limits.max_output_chars},
        # hidden tests are hidden before the page is sanitised (which escapes the text they are matched in)
        "GenerateFeedback": {"preprocessors": [GetGrades, HideHiddenTests, *FEEDBACK_PREPROCESSORS,
                                               CSSHTMLHeaderPreprocessor]},
        "NbGraderAPI": {"log_level": "INFO"},
    }))
    config.merge(output_limits_config())
    config.merge(feedback_config())
    return config


def install_kernelspec(jupyter_dir):
    """Write the `cgan-grading` kernelspec under `jupyter_dir` (put it on JUPYTER_PATH)."""
    spec = jupyter_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(REPO / "autograder" / "isolation" / "kernel.py"), "-f", "{connection_file}"],
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


