"""nbgrader configuration of the CGAN lab (the course root is the repository root).

nbgrader reads ./nbgrader_config.py, which loads this file; run nbgrader from the
repository root, e.g. `nbgrader generate_assignment cgan --force`.
"""
import os
from pathlib import Path

c = get_config()  # noqa: F821 -- provided by nbgrader's config loader

ROOT = Path(__file__).resolve().parent.parent

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "cgan-lab"
c.CourseDirectory.source_directory = "solutions"     # instructor notebooks
c.CourseDirectory.release_directory = "assignments"  # student notebooks, generated
# The gradebook holds hidden tests: keep it out of the committed tree.
grading_dir = Path(os.environ.get("CGAN_GRADING_DIR", ROOT / "out" / "grading")).resolve()
grading_dir.mkdir(parents=True, exist_ok=True)  # sqlite does not create folders
c.CourseDirectory.db_url = os.environ.get("CGAN_GRADEBOOK_URL", f"sqlite:///{grading_dir / 'gradebook.db'}")

# What students see in place of a solution: the course's START/END CODE HERE skeleton.
c.ClearSolutions.code_stub = {
    "python": (
        "### START CODE HERE\n"
        "raise NotImplementedError(\"Not done yet: write your code between START CODE HERE \"\n"
        "                          \"and END CODE HERE (replacing this line), then run the cell again.\")\n"
        "### END CODE HERE"
    )
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Files in an assignment folder that are never released, collected or graded.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "checkpoints", "*.pth", "out"]

# Students never see output the instructor's run left behind.
c.ClearOutput.enabled = True

# Plain `nbgrader autograde` (formgrader, or nbgrader run by hand) executes the test cells in the
# notebook's kernel; its default of 30 s per cell is less than the hidden training run takes on a
# busy 2-core machine. `python -m autograder grade` sets its own limits (autograder/assignments/*.toml).
c.Execute.timeout = 120
