"""`make demo`: the instructor's flow on the bundled sample class.

    1. release the CGAN assignment   (python -m autograder release cgan)
    2. write the sample class         (python -m autograder.testdata.sample_class out/sample_class)
    3. grade it, write feedback, grades.csv and problems.csv, print the table
                                      (python -m autograder grade cgan out/sample_class)

The sample class has submissions that must be flagged, so grading ends with status 1
("some need attention"); the demo itself succeeds unless the grader could not run.
"""
import shutil
import sys

from autograder import __main__ as cli
from autograder.config import REPO
from autograder.isolation import sandbox
from autograder.testdata import sample_class

CLASS = REPO / "out" / "sample_class"
WORKSPACE = REPO / "out" / "grading"


def main():
    print("== 1. release: nbgrader generate_assignment cgan -> assignments/cgan/", flush=True)
    if cli.main(["release", "cgan"]):
        return 2
    reason = sandbox.unavailable_reason()
    if reason:
        print(f"\nNote: grading without the sandbox, and without the attacks only it can stop: {reason}", flush=True)
    shutil.rmtree(CLASS, ignore_errors=True)
    written = sample_class.write(CLASS, sandbox=reason is None)
    print(f"\n== 2. sample class: {len(written)} submissions in {CLASS.relative_to(REPO)}/ "
          "(correct, buggy, broken, hostile; see autograder/sample_class.py)", flush=True)
    print(f"\n== 3. grade with {sample_class.LIMITS.cell_timeout} s per cell, {sample_class.LIMITS.notebook_timeout} s "
          "per notebook (a few minutes; three submissions run into those limits on purpose)", flush=True)
    status = cli.main(["grade", "cgan", str(CLASS), "--workspace", str(WORKSPACE),
                       "--cell-timeout", str(sample_class.LIMITS.cell_timeout),
                       "--notebook-timeout", str(sample_class.LIMITS.notebook_timeout),
                       *([] if reason is None else ["--no-sandbox"])])
    if status <= 1:
        print(f"\nOpen {(WORKSPACE / 'feedback' / 'bug_no_tanh' / 'cgan' / 'cgan.html').relative_to(REPO)} to see "
              "what a student gets back.")
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
