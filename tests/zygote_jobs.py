"""Jobs for tests/test_zygote.py: the zygote's target, doing what the job file says.

    {"action": "report"}   write what the child sees (pid, session, environment, cwd) to report.json
    {"action": "hang"}     start a grandchild, write both pids to pids.json, sleep until killed
    {"action": "crash"}    raise
"""
import json
import os
import subprocess
import time
from pathlib import Path


def run(job_file):
    job_file = Path(job_file)
    action = json.loads(job_file.read_text())["action"]
    if action == "report":
        report = {"pid": os.getpid(), "session": os.getsid(0), "cwd": os.getcwd(), "environment": dict(os.environ)}
        (job_file.parent / "report.json").write_text(json.dumps(report))
        print("reported")
    elif action == "hang":
        grandchild = subprocess.Popen(["sleep", "1000"])
        (job_file.parent / "pids.json").write_text(json.dumps({"child": os.getpid(), "grandchild": grandchild.pid}))
        time.sleep(1000)
    else:
        raise RuntimeError("the job crashed on purpose")
