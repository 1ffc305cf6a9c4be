"""What the pipeline reads and writes in nbgrader's gradebook (nbgrader.api.Gradebook).

Each submission is graded against a private copy of the gradebook (a task's, on any
machine), so that no two processes ever write one SQLite file; the client alone writes the
main gradebook, from the scores the tasks return as data.
"""
import warnings

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning


def _submission(gradebook, assignment, student):
    """The student's submission, created (with the student) if there is none yet."""
    gradebook.update_or_create_student(student)
    try:
        return gradebook.find_submission(assignment, student)
    except MissingEntry:
        with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
            warnings.simplefilter("ignore", SAWarning)
            return gradebook.add_submission(assignment, student)


def read_scores(db_url, assignment, student):
    """One student's automatic scores and comments in a (worker's) gradebook, as data:
    ({grade cell: [auto_score, needs_manual_grade]}, {cell: auto_comment})."""
    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        grades = {g.name: [g.auto_score, g.needs_manual_grade] for nb in submission.notebooks for g in nb.grades}
        comments = {c.name: c.auto_comment for nb in submission.notebooks for c in nb.comments}
    return grades, comments


def write_scores(main_url, assignment, student, grades, comments):
    """Put a student's automatic scores and comments (read_scores' data) into the main gradebook.

    Scores a grader already gave by hand are kept, as nbgrader's own SaveAutoGrades does.
    """
    with Gradebook(main_url) as gradebook:
        target = _submission(gradebook, assignment, student)
        for notebook in target.notebooks:
            notebook.flagged = False
            for grade in notebook.grades:
                grade.auto_score, needs_review = grades[grade.name]
                grade.needs_manual_grade = needs_review or grade.manual_score is not None
            for comment in notebook.comments:
                comment.auto_comment = comments.get(comment.name)
        gradebook.db.commit()


def record_not_graded(main_url, assignment, student):
    """A submission nothing could be graded from: 0 for every cell, automatic and written."""
    with Gradebook(main_url) as gradebook:
        target = _submission(gradebook, assignment, student)
        for notebook in target.notebooks:
            notebook.flagged = True
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gradebook.db.commit()


def grade_cell_points(db_url, assignment):
    """{grade cell: its points}, over the assignment's notebooks."""
    with Gradebook(db_url) as gradebook:
        return {cell.name: cell.max_score for notebook in gradebook.find_assignment(assignment).notebooks
                for cell in notebook.grade_cells}


def max_score(db_url, assignment):
    """The assignment's points, automatic and by hand."""
    with Gradebook(db_url) as gradebook:
        return gradebook.find_assignment(assignment).max_score


def grade_columns(main_url, assignment):
    """The columns of grade_table: student, totals, then every graded cell."""
    with Gradebook(main_url) as gradebook:
        cells = [cell.name for notebook in gradebook.find_assignment(assignment).notebooks
                 for cell in notebook.grade_cells]
    return ["student", "score", "max_score", "to_grade_by_hand"] + cells


def grade_table(main_url, assignment, only=None):
    """(columns, rows): per student (or only the student `only`), the total and the points of every graded cell.

    A written answer nobody has graded yet is left blank and counted in `to_grade_by_hand`.
    """
    with Gradebook(main_url) as gradebook:
        cells = [(cell.notebook.name, cell.name, cell.max_score)
                 for notebook in gradebook.find_assignment(assignment).notebooks for cell in notebook.grade_cells]
        columns = ["student", "score", "max_score", "to_grade_by_hand"] + [name for _, name, _ in cells]
        rows = []
        for student in [only] if only else sorted(s.id for s in gradebook.students):
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                continue
            grades = [grade for notebook in submission.notebooks for grade in notebook.grades]
            row = {"student": student, "score": sum(g.score for g in grades if g.score is not None),
                   "max_score": sum(m for _, _, m in cells),
                   "to_grade_by_hand": sum(g.needs_manual_grade and g.manual_score is None for g in grades)}
            row.update({g.name: "" if g.score is None else g.score for g in grades})
            rows.append(row)
    return columns, rows
