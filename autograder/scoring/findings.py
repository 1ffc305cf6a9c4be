"""What grading hit in an executed notebook: timeouts, exits, floods, memory."""
from autograder.intake.notebook import nbgrader_id


def after_execution(notebook, limits):
    """[(kind, detail)] for what grading hit in the executed notebook: timeouts, exits, floods, memory."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        label = f"cell {nbgrader_id(cell)!r}" if nbgrader_id(cell) else f"cell {index + 1}"
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = f"{output.ename}: {output.evalue}"
                if output.ename == "CellTimeoutError" or "before timeout" in text:
                    problems.append(("cell timeout", f"{label} ran longer than {limits.cell_timeout} s: interrupted"))
                elif output.ename == "SystemExit":
                    problems.append(("exit", f"{label} called sys.exit() or exit(); the grader went on"))
                elif output.ename == "MemoryError" or any(
                        phrase in text.lower() for phrase in ("can't allocate memory", "cannot allocate memory")):
                    problems.append(("out of memory", f"{label} tried to use more than the "
                                                      f"{limits.memory_gb:g} GB allowed: {text[:120]}"))
            elif output.output_type == "stream" and "[output flood:" in output.text:
                problems.append(("output flood", f"{label} printed more than {limits.max_output_chars:,} characters "
                                                 f"to {output.name}: kept the start"))
    return list(dict.fromkeys(problems))
