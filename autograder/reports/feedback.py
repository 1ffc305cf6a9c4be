"""Feedback pages the grader writes itself (nbgrader writes the others)."""
import html


def not_graded_page(path, student, assignment, problems, max_score):
    path.parent.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li><b>{html.escape(kind)}</b>: {html.escape(detail)}</li>" for kind, detail in problems)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment}: feedback</title></head>"
                    f"<body><h1>{html.escape(assignment)}: {html.escape(student)}</h1>"
                    f"<p>Your submission could not be graded, so it scored <b>0 / {max_score:g}</b>:</p>"
                    f"<ul>{items}</ul><p>Contact your instructor.</p></body></html>")
