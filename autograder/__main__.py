"""The instructor's command line: release, grade and report on an assignment.

    python -m autograder release cgan                  # nbgrader generate_assignment into assignments/
    python -m autograder grade cgan <submissions>      # grade a folder or LMS zip, write feedback and CSVs
    python -m autograder grade cgan <submissions> --scheduler tcp://host:8786   # ... on a Dask cluster
    python -m autograder report cgan                   # grades.csv / problems.csv again, from the gradebook

Exit status: 0 when every submission was graded normally, 1 when any needs attention
(each is a line of problems.csv), 2 when the grader itself could not run.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

from autograder.assignment import Assignment
from autograder.config import DEFAULT_WORKSPACE, REPO, Limits, workspace_path
from autograder.reports.tables import report
from autograder.run.engine import EngineConfig, EngineError
from autograder.run.pipeline import GradingRun, grade


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    release = verbs.add_parser("release", help="generate the student notebook(s) in assignments/ from solutions/")
    release.add_argument("assignment")
    graded = verbs.add_parser("grade", help="grade submissions, write feedback, grades.csv and problems.csv")
    graded.add_argument("assignment")
    graded.add_argument("submissions", help="folder of <student>/<assignment>.ipynb or <student>/<assignment>/, or an LMS zip")
    cores = len(os.sched_getaffinity(0))
    graded.add_argument("--scheduler", help="grade on this Dask scheduler, e.g. tcp://host:8786 (default: "
                                            "$DASK_SCHEDULER_ADDRESS, else a LocalCluster on this machine)")
    graded.add_argument("--workers", type=int, default=cores,
                        help=f"LocalCluster: submissions graded at once, one per worker process (default: cores, {cores})")
    graded.add_argument("--regrade", action="store_true",
                        help="grade again what an earlier run graded (default: skip submissions whose content is unchanged)")
    graded.add_argument("--max-tries", type=int, default=3,
                        help="LocalCluster: runs of a submission whose grading process dies (%(default)s)")
    graded.add_argument("--gpu", action="store_true", help="grade only on workers started with --resources GPU=1")
    defaults = Limits()
    graded.add_argument("--cell-timeout", type=int, help="seconds per cell (default: the assignment's)")
    graded.add_argument("--notebook-timeout", type=int, help="seconds per submission (default: the assignment's)")
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
            assignment = Assignment.load(args.assignment)
            limits = Limits(cell_timeout=args.cell_timeout or assignment.cell_timeout,
                            notebook_timeout=args.notebook_timeout or assignment.notebook_timeout,
                            memory_gb=args.memory_gb, threads=1, sandbox=args.sandbox)
            engine = EngineConfig(scheduler_address=args.scheduler, n_workers=args.workers, max_tries=args.max_tries,
                                  resources={"GPU": 1} if args.gpu else {}, require_sandbox=args.sandbox,
                                  regrade=args.regrade)
            grade(GradingRun(assignment, Path(args.submissions), workspace_path(args.workspace), limits, engine,
                             quiet=args.quiet))
        return 1 if report(args.assignment, args.workspace) else 0
    except (FileNotFoundError, ValueError, RuntimeError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
