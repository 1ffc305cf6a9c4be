"""`make demo`: the instructor's flow on the bundled sample classes of both assignments.

For each assignment (cgan, then netviz):

    1. release it                      (python -m autograder release cgan)
    2. write its sample class          (python -m autograder.testdata.sample_class out/sample_class/cgan)
    3. grade it, write feedback, the grades and problems files, print the table
                                       (python -m autograder grade cgan out/sample_class/cgan)

The sample classes have submissions that must be flagged, so grading ends with status 1
("some need attention"); the demo itself succeeds unless the grader could not run.
"""
import shutil
import sys

from autograder import __main__ as cli
from autograder.config import REPO
from autograder.isolation import launch
from autograder.testdata import netviz_class, sample_class

CLASSES = REPO / "out" / "sample_class"
WORKSPACE = REPO / "out" / "grading"
ASSIGNMENTS = [("cgan", sample_class, "bug_no_tanh"), ("netviz", netviz_class, "bug_fooling_descent")]


def main():
    reason = launch.unavailable_reason()
    if reason:
        print(f"Note: grading without the sandbox, and without the attacks only it can stop: {reason}", flush=True)
    for name, cases, example in ASSIGNMENTS:
        print(f"\n== {name}: 1. release: nbgrader generate_assignment {name} -> assignments/{name}/", flush=True)
        if cli.main(["release", name]):
            return 2
        folder = CLASSES / name
        shutil.rmtree(folder, ignore_errors=True)
        written = cases.write(folder, sandbox=reason is None) if name == "cgan" else cases.write(folder)
        print(f"\n== {name}: 2. sample class: {len(written)} submissions in {folder.relative_to(REPO)}/ "
              f"(correct, buggy, broken, hostile; see {cases.__name__.replace('.', '/')}.py)", flush=True)
        limits = getattr(cases, "LIMITS", None)
        options = ["--cell-timeout", str(limits.cell_timeout), "--notebook-timeout", str(limits.notebook_timeout),
                   "--memory-gb", str(limits.memory_gb)] if limits else []
        print(f"\n== {name}: 3. grade (some submissions run into their time limits on purpose)", flush=True)
        status = cli.main(["grade", name, str(folder), "--workspace", str(WORKSPACE), "--regrade", *options,
                           *([] if reason is None else ["--no-sandbox"])])
        if status > 1:
            return status
        page = WORKSPACE / "feedback" / example / name / f"{name}.html"
        print(f"\nOpen {page.relative_to(REPO)} to see what a student gets back.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
