"""Run the solution notebook's own code outside Jupyter: one source of truth for benchmarks.

    ns = load_cells(["imports", "settings", "device", "generator", "discriminator", "train_step"])
    ns["Generator"], ns["train_step"], ns["opt"], ...

Cells are picked by their nbgrader grade_id and executed in order in one namespace.
`definitions_only` cells contribute only their imports, classes, functions and
UPPER_CASE constants, not their statements (e.g. a test cell's assertions).
"""
import ast
from pathlib import Path

import nbformat

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "cgan" / "cgan.ipynb"


def cell_sources(notebook=SOLUTION):
    """{grade_id: source} of the notebook's nbgrader cells."""
    nb = nbformat.read(notebook, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}


def definitions(source):
    """Only the imports, class/function definitions and UPPER_CASE constants of a cell."""
    def kept(node):
        if isinstance(node, ast.Assign):
            return all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
        return isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef))

    tree = ast.parse(source)
    tree.body = [node for node in tree.body if kept(node)]
    return ast.unparse(tree)


def load_cells(grade_ids, definitions_only=(), notebook=SOLUTION, namespace=None, replace=None):
    """Execute the named cells in order; `replace` maps grade_id -> new source (e.g. a buggy variant)."""
    sources = cell_sources(notebook)
    namespace = {} if namespace is None else namespace
    namespace.setdefault("display", lambda *args, **kwargs: None)
    for grade_id in grade_ids:
        source = (replace or {}).get(grade_id, sources[grade_id])
        if grade_id in definitions_only:
            source = definitions(source)
        exec(compile(source, f"<{notebook.name}:{grade_id}>", "exec"), namespace)
    return namespace
