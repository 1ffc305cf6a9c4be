"""The instructor's command line: release, grade and report on an assignment.

    python -m autograder release cgan                  # nbgrader generate_assignment into assignments/
    python -m autograder grade cgan <submissions>      # grade a folder or LMS zip, write feedback and CSVs
    python -m autograder report cgan                   # grades.csv / problems.csv again, from the gradebook

Exit status: 0 when every submission was graded normally, 1 when any needs attention
(each is a line of problems.csv), 2 when the grader itself could not run.
"""
import argparse
import os
import subprocess
import sys

from autograder.config import DEFAULT_WORKSPACE, REPO, Limits
from autograder.reports.tables import report
from autograder.run.pipeline import grade


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    release = verbs.add_parser("release", help="generate the student notebook(s) in assignments/ from solutions/")
    release.add_argument("assignment")
    graded = verbs.add_parser("grade", help="grade submissions, write feedback, grades.csv and problems.csv")
    graded.add_argument("assignment")
    graded.add_argument("submissions", help="folder of <student>/<assignment>.ipynb or <student>/<assignment>/, or an LMS zip")
    cores = len(os.sched_getaffinity(0))
    graded.add_argument("--workers", type=int, default=cores, help=f"students graded at once (default: cores, {cores})")
    defaults = Limits()
    graded.add_argument("--cell-timeout", type=int, default=defaults.cell_timeout, help="seconds per cell (%(default)s)")
    graded.add_argument("--notebook-timeout", type=int, default=defaults.notebook_timeout,
                        help="seconds per submission (%(default)s)")
    graded.add_argument("--memory-gb", type=float, default=defaults.memory_gb, help="per kernel (%(default)s)")
    graded.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="run students' code without the bubblewrap sandbox (where the platform cannot "
                             "provide it; the code then runs with the grader's rights)")
    graded.add_argument("--quiet", action="store_true", help="no progress bar")
    reported = verbs.add_parser("report", help="write grades.csv and problems.csv from the gradebook, print the table")
    reported.add_argument("assignment")
    for verb in (graded, reported):
        verb.add_argument("--workspace", help=f"grading workspace (default: $CGAN_GRADING_DIR or {DEFAULT_WORKSPACE})")
    args = parser.parse_args(argv)
    # nbgrader creates gradebooks with the `alembic` command of its own environment
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    try:
        if args.verb == "release":
            return subprocess.call([sys.executable, "-m", "nbgrader", "generate_assignment", args.assignment, "--force"],
                                   cwd=REPO) and 2
        if args.verb == "grade":
            limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                            memory_gb=args.memory_gb, threads=max(1, cores // args.workers), sandbox=args.sandbox)
            grade(args.assignment, args.submissions, args.workspace, args.workers, limits, quiet=args.quiet)
        return 1 if report(args.assignment, args.workspace) else 0
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
