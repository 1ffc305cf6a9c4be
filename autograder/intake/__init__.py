"""Intake: what the instructor downloaded, read, repaired and scanned before anything runs.

    lms.py       find each student's notebook in a folder or an LMS export
    listing.py   list folders and zips without following links; read a submission safely
    notebook.py  read a notebook and repair what nbgrader would choke on
    scan.py      the tamper scan (a note for the instructor, never a score)
"""
from autograder.intake.notebook import Triage, read, release_notebook, repair
from autograder.intake.scan import names_tests_use, scan


def triage(path, release_path, solution_path):
    """Triage of the submission at `path` against the assignment's release and source notebooks."""
    result = Triage(notebook=None)
    notebook = read(path, result)
    if notebook is None:
        return result
    release = release_notebook(release_path)
    result.notebook = repair(notebook, release, result)
    for label, line, code, why in scan(result.notebook, release, names_tests_use(solution_path)):
        detail = f"{label}, line {line}: `{code}` {why}"
        result.tampering.append(detail)
        result.note("possible tampering", detail + " (a note for you: the scores do not depend on it)")
    return result


