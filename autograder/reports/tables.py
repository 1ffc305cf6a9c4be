"""grades.csv, problems.csv and the summary table, from the gradebook and the last run's records."""
import csv
import json
import sys

from autograder.config import db_url, workspace_path
from autograder.scoring import gradebook


def report(assignment, workspace=None, out=sys.stdout):
    """Write grades.csv and problems.csv from the gradebook and the last run's records; print the table.

    Returns the number of students whose submission needs attention.
    """
    workspace = workspace_path(workspace)
    main = workspace / "gradebook.db"
    if not main.exists():
        raise FileNotFoundError(f"{main}: no gradebook yet; run `python -m autograder grade {assignment} <submissions>`")
    columns, rows = gradebook.grade_table(db_url(main), assignment)
    records = {p.stem: json.loads(p.read_text()) for p in sorted((workspace / "results" / assignment).glob("*.json"))}
    with open(workspace / "grades.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns + ["problems"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "problems": len(records.get(row["student"], {}).get("problems", []))})
    with open(workspace / "problems.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "problem", "detail", "submitted_file"])
        for student, record in records.items():
            for kind, detail in record["problems"]:
                writer.writerow([student, kind, detail, record["origin"]])

    width = max([len(r["student"]) for r in rows] + [7])
    print(f"\n{'student':<{width}}  {'score':>11}  {'by hand':>7}  problems", file=out)
    for row in rows:
        kinds = sorted({kind for kind, _ in records.get(row["student"], {}).get("problems", [])})
        print(f"{row['student']:<{width}}  {row['score']:>5g} / {row['max_score']:<3g}  {row['to_grade_by_hand']:>7}  "
              f"{', '.join(kinds)}", file=out)
    attention = sum(bool(r["problems"]) for r in records.values())
    print(f"\n{len(rows)} students, {attention} need attention (see problems.csv). "
          f"Written: {workspace / 'grades.csv'}, {workspace / 'problems.csv'}, feedback in {workspace / 'feedback'}",
          file=out)
    return attention
