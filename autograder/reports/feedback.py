"""Feedback pages the grader writes itself (nbgrader writes the others), with the same policy: no script runs."""
import html

from autograder.reports.feedback_exporter import PAGE_HEAD


def _page(assignment, student, body):
    return (f"<!DOCTYPE html><html><head>{PAGE_HEAD}<meta charset='utf-8'><title>{html.escape(assignment)}: "
            f"feedback</title></head><body><h1>{html.escape(assignment)}: {html.escape(student)}</h1>{body}</body></html>")


def _problems(problems):
    return "".join(f"<li><b>{html.escape(kind)}</b>: {html.escape(detail)}</li>" for kind, detail in problems)


def not_graded_page(path, student, assignment, problems, max_score):
    """The page of a submission nothing could be graded from: 0, and why."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(assignment, student, f"<p>Your submission could not be graded, so it scored "
                                               f"<b>0 / {max_score:g}</b>:</p><ul>{_problems(problems)}</ul>"
                                               f"<p>Contact your instructor.</p>"))


def verdicts_page(path, student, assignment, verdicts, points, problems):
    """The page of a submission whose tests were judged but whose notebook did not run to its end."""
    rows = "".join(
        f"<tr><td>{html.escape(grade_id)}</td><td>{points[grade_id] if v['passed'] else 0:g} / {points[grade_id]:g}</td>"
        f"<td>{'passed' if v['passed'] else 'failed: ' + html.escape(v['message'])}</td></tr>"
        for grade_id, v in verdicts.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(assignment, student, (
        f"<p>The tests ran (outside your notebook) and scored as below, but your notebook itself did not run to "
        f"its end, so there is no annotated copy of it:</p><ul>{_problems(problems)}</ul>"
        f"<table border='1' cellpadding='4'><tr><th>test</th><th>points</th><th>result</th></tr>{rows}</table>"
        f"<p>Your written answers are graded by hand from the notebook you submitted.</p>")))
