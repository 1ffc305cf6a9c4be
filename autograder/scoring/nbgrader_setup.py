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
from autograder.scoring.preprocessors import BoundedExecute, HideHiddenTests, LimitOutput, NoPartialCredit, StderrIsNotScored


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


