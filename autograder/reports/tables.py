"""grades-<assignment>.csv, problems-<assignment>.csv and the summary table.

While a run grades, each student's line is appended as their result arrives (start,
append_student): a run that is stopped leaves what it graded. At the end, `report`
writes both files again, complete and sorted, from the gradebook (which holds the scores
given by hand too) and the records in results/.
"""
import csv
import json
import sys

from autograder.config import db_url, workspace_path
from autograder.scoring import gradebook

PROBLEM_COLUMNS = ["student", "problem", "detail", "submitted_file"]


def paths(workspace, assignment):
    return workspace / f"grades-{assignment}.csv", workspace / f"problems-{assignment}.csv"


def start(workspace, assignment, main_url):
    """Fresh files with their headers, for the lines a run appends as results arrive."""
    columns = gradebook.grade_columns(main_url, assignment)
    grades, problems = paths(workspace, assignment)
    with open(grades, "w", newline="") as f:
        csv.writer(f).writerow(columns + ["problems"])
    with open(problems, "w", newline="") as f:
        csv.writer(f).writerow(PROBLEM_COLUMNS)


def append_student(workspace, assignment, record):
    """Append one student's line to the grades and their problems, as their result arrives."""
    grades, problems = paths(workspace, assignment)
    columns, rows = gradebook.grade_table(db_url(workspace / "gradebook.db"), assignment, only=record.student)
    with open(grades, "a", newline="") as f:
        writer = csv.DictWriter(f, columns + ["problems"])
        for row in rows:
            writer.writerow({**row, "problems": len(record.problems)})
    with open(problems, "a", newline="") as f:
        writer = csv.writer(f)
        for kind, detail in record.problems:
            writer.writerow([record.student, kind, detail, record.origin])


def report(assignment, workspace=None, out=sys.stdout):
    """Write the grades and problems files from the gradebook and the records; print the table.

    Returns the number of students whose submission needs attention.
    """
    workspace = workspace_path(workspace)
    main = workspace / "gradebook.db"
    if not main.exists():
        raise FileNotFoundError(f"{main}: no gradebook yet; run `python -m autograder grade {assignment} <submissions>`")
    columns, rows = gradebook.grade_table(db_url(main), assignment)
    records = {p.stem: json.loads(p.read_text()) for p in sorted((workspace / "results" / assignment).glob("*.json"))}
    grades, problems = paths(workspace, assignment)
    with open(grades, "w", newline="") as f:
        writer = csv.DictWriter(f, columns + ["problems"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "problems": len(records.get(row["student"], {}).get("problems", []))})
    with open(problems, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PROBLEM_COLUMNS)
        for student, record in records.items():
            for kind, detail in record["problems"]:
                writer.writerow([student, kind, detail, record["origin"]])

    width = max([len(r["student"]) for r in rows] + [7])
    print(f"\n{'student':<{width}}  {'score':>11}  {'by hand':>7}  problems", file=out)
    for row in rows:
        kinds = sorted({kind for kind, _ in records.get(row["student"], {}).get("problems", [])})
        print(f"{row['student']:<{width}}  {row['score']:>5g} / {row['max_score']:<3g}  {row['to_grade_by_hand']:>7}  "
              f"{', '.join(kinds)}", file=out)
    if "(class)" in records:
        print(f"\nnot from any one student: {'; '.join(d for _, d in records['(class)']['problems'])}", file=out)
    attention = sum(bool(r["problems"]) for r in records.values())
    print(f"\n{len(rows)} students, {attention} need attention (see {problems.name}). "
          f"Written: {grades}, {problems}, feedback in {workspace / 'feedback'}", file=out)
    return attention
