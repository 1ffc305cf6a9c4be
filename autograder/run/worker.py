"""The process that grades one student in a private course folder.

Each submission's grading task (autograder.run.task) runs it in a process of its own, forked
by a warm zygote (autograder.run.zygote), or from scratch:

    python -m autograder.run.worker <job.json>

The worker autogrades the student's submission against its own copy of the gradebook,
writes feedback, and writes its result to result.json beside the job file.
"""
import json
import sys
from dataclasses import dataclass
from pathlib import Path

# jsonschema (via nbformat) compiles an IRI grammar when it finds rfc3987_syntax: 1.4 s of every
# worker's start, for a format check nothing here uses. Without the module it skips that check.
sys.modules.setdefault("rfc3987_syntax", None)

from nbgrader.apps import NbGraderAPI

from autograder.config import Limits
from autograder.scoring.judging import wait_for_verdicts
from autograder.scoring.nbgrader_setup import nbgrader_config


@dataclass
class Job:
    """One student's grading, as the pipeline hands it to a worker process."""
    root: str            # the private course folder: submitted/, autograded/, feedback/
    db_url: str          # the private gradebook
    assignment: str
    student: str
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
    wait_for_verdicts()  # when the notebook's run failed, nbgrader did not wait for them
    result = {"autograded": graded["success"], "log": graded.get("log", "") + graded.get("error", "")}
    judgement = Path(job.root) / "judgement.json"
    if judgement.exists():
        report = json.loads(judgement.read_text())
        result["problems"], result["log"] = report["problems"], result["log"] + report["log"]
    if graded["success"]:
        feedback = api.generate_feedback(job.assignment, job.student, force=True)
        result["feedback"] = feedback["success"]
        result["log"] += feedback.get("log", "") + feedback.get("error", "")
    return result


def main(job_file):
    """Grade the job in `job_file`; its result in result.json beside it."""
    job_file = Path(job_file)
    result = run(Job(**json.loads(job_file.read_text())))
    (job_file.parent / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":  # python -m autograder.run.worker job.json  ->  result.json beside it
    main(sys.argv[1])

