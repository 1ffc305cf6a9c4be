"""The zygote (autograder/run/zygote.py) forks each grading process from a warm one.

Real processes: a zygote started by the Zygote class, whose target is tests/zygote_jobs.py.
"""
import json
import os
import time
from pathlib import Path

import pytest

from autograder.config import REPO
from autograder.run.zygote import Zygote, ZygoteDied

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def zygote():
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), MPLBACKEND="Agg")
    zygote = Zygote(environment, cwd=REPO, target="zygote_jobs:run")
    yield zygote
    zygote.close()


def job(folder, action):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps({"action": action}))
    return folder / "job.json", folder / "job.log"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_child_runs_the_job_with_its_environment_folder_and_a_session_of_its_own(zygote, tmp_path):
    job_file, log = job(tmp_path / "a", "report")
    zygote.fork(job_file, {"CGAN_TEST_VARIABLE": "42", "PATH": os.environ["PATH"]}, log, tmp_path)
    assert zygote.wait(60) == 0, log.read_text()
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["environment"] == {"CGAN_TEST_VARIABLE": "42", "PATH": os.environ["PATH"]}
    assert report["cwd"] == str(tmp_path)
    assert report["session"] == report["pid"] != zygote.process.pid
    assert log.read_text().strip() == "reported"


def test_a_child_past_its_time_is_killed_with_everything_it_started(zygote, tmp_path):
    job_file, log = job(tmp_path, "hang")
    zygote.fork(job_file, dict(os.environ), log, tmp_path)
    assert zygote.wait(3) is None  # still running: the caller decides
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert alive(pids["child"]) and alive(pids["grandchild"])
    assert zygote.kill_child() == -9
    deadline = time.monotonic() + 10
    while alive(pids["grandchild"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pids["child"]) and not alive(pids["grandchild"])


def test_a_crash_is_an_exit_status_and_a_traceback_and_the_next_job_runs(zygote, tmp_path):
    job_file, log = job(tmp_path / "crash", "crash")
    zygote.fork(job_file, dict(os.environ), log, tmp_path)
    assert zygote.wait(60) == 1
    assert "RuntimeError: the job crashed on purpose" in log.read_text()
    job_file, log = job(tmp_path / "next", "report")
    zygote.fork(job_file, dict(os.environ), log, tmp_path)
    assert zygote.wait(60) == 0


def test_a_dead_zygote_is_reported_not_waited_for(tmp_path):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), MPLBACKEND="Agg")
    zygote = Zygote(environment, cwd=REPO, target="zygote_jobs:run")
    job_file, log = job(tmp_path, "hang")
    zygote.fork(job_file, dict(os.environ), log, tmp_path)
    zygote.process.kill()
    with pytest.raises(ZygoteDied, match="ended"):
        zygote.wait(60)
    assert not zygote.alive
    with pytest.raises(ZygoteDied):
        zygote.fork(job_file, dict(os.environ), log, tmp_path)
    deadline = time.monotonic() + 10  # its child dies with it (PR_SET_PDEATHSIG)
    pids = json.loads((tmp_path / "pids.json").read_text())
    while alive(pids["child"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pids["child"])
    zygote.close()
