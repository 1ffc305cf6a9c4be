"""The tamper scan: code in a submission that reaches for what the tests rely on.

A tripwire, never a defence, and never a score: the verdict is computed outside the
student's processes (autograder/scoring/verdict.py), so what the scan finds is a line in
problems.csv for the instructor to read, with the code it matched.
"""
import ast
import contextlib
import functools

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from autograder.intake.notebook import is_locked, nbgrader_id


MODULE_ROOTS = {"torch", "numpy", "cgan_lib", "builtins", "sys", "os", "math", "random", "matplotlib",
                "IPython", "scipy", "inspect", "gc", "ctypes", "importlib", "types", "unittest", "nbgrader"}
ALLOWED_ASSIGNMENTS = ("torch.backends.", "os.environ", "rcParams")  # settings, not the tests' tools
SUSPICIOUS_NAMES = {
    "exec": "runs code built at run time", "eval": "runs code built at run time",
    "compile": "runs code built at run time", "__import__": "imports behind the scanner's back",
    "globals": "can rebind the tests' names", "__builtins__": "can replace Python's built-ins",
}
SUSPICIOUS_ATTRIBUTES = {
    "settrace": "traces the tests",
    "setprofile": "traces the tests", "_getframe": "reaches into the tests' frames",
    "currentframe": "reaches into the tests' frames", "get_referrers": "finds the tests' objects",
    "get_objects": "finds the tests' objects", "__code__": "rewrites functions", "__globals__": "reaches the tests' names",
    "__closure__": "rewrites functions", "events": "hooks into how cells are run",
    "input_transformers_post": "rewrites cells before they run", "ast_transformers": "rewrites cells before they run",
}
# Attributes that matter only on one object: `self.modules()` and reading `m.__class__` are ordinary PyTorch.
SUSPICIOUS_DOTTED = {"sys.modules": "can swap the modules the tests import"}
REASSIGNED_ATTRIBUTES = {"__class__": "changes an object's type"}
SUSPICIOUS_MODULES = {"ctypes": "can crash or rewrite the interpreter", "builtins": "can replace Python's built-ins",
                      "importlib": "can swap modules", "gc": "finds the tests' objects"}
DUNDER_COMPARISONS = {"__eq__", "__ne__", "__bool__", "__hash__", "__instancecheck__", "__subclasscheck__",
                      "__getattribute__", "__torch_function__", "__array_ufunc__", "__array_function__"}


def _dotted(node):
    """'torch.Tensor.__eq__' for an attribute chain rooted at a name, else None."""
    parts = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules, protected):
        self.modules, self.protected, self.found = modules, protected, []

    def flag(self, node, why):
        self.found.append((node.lineno, why))

    def _target(self, target, node):
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._target(element, node)
        elif isinstance(target, ast.Name) and target.id in self.protected:
            self.flag(node, f"rebinds {target.id}, which the tests use")
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            dotted = _dotted(target)
            if dotted and dotted.split(".")[0] in self.modules and not any(a in dotted for a in ALLOWED_ASSIGNMENTS):
                self.flag(node, f"changes {dotted} (monkeypatching a library the tests rely on)")

    def visit_Assign(self, node):
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target, node)
        self.generic_visit(node)

    visit_AnnAssign = visit_AugAssign

    def visit_Delete(self, node):
        for target in node.targets:
            self._target(target, node)

    def _definition(self, node):
        if node.name in self.protected:
            self.flag(node, f"redefines {node.name}, which the tests use")
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _definition

    def visit_ClassDef(self, node):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in DUNDER_COMPARISONS:
                self.flag(item, f"class {node.name} defines {item.name} (an object that can fool comparisons)")
        self._definition(node)

    def visit_Import(self, node):
        for alias in node.names:
            root = alias.name.split(".")[0]
            if SUSPICIOUS_MODULES.get(root):
                self.flag(node, f"imports {alias.name}, which {SUSPICIOUS_MODULES[root]}")
            if root in MODULE_ROOTS:
                self.modules.add(alias.asname or root)

    def visit_ImportFrom(self, node):
        root = (node.module or "").split(".")[0]
        if SUSPICIOUS_MODULES.get(root):
            self.flag(node, f"imports from {node.module}, which {SUSPICIOUS_MODULES[root]}")
        for alias in node.names:
            name = alias.asname or alias.name
            if root in MODULE_ROOTS:
                self.modules.add(name)  # possibly a module (from torch import nn); assigning into it is patching

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
            dotted = _dotted(node.args[0])
            if dotted and dotted.split(".")[0] in self.modules | self.protected:
                self.flag(node, f"{node.func.id}() on {dotted} (monkeypatching)")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in SUSPICIOUS_NAMES:
            self.flag(node, f"uses {node.id}, which {SUSPICIOUS_NAMES[node.id]}")

    def visit_Attribute(self, node):
        why = SUSPICIOUS_ATTRIBUTES.get(node.attr)
        if why:
            self.flag(node, f"uses .{node.attr}, which {why}")
        dotted = _dotted(node)
        if dotted in SUSPICIOUS_DOTTED:
            self.flag(node, f"uses {dotted}, which {SUSPICIOUS_DOTTED[dotted]}")
        if node.attr in REASSIGNED_ATTRIBUTES and isinstance(node.ctx, ast.Store):
            self.flag(node, f"assigns .{node.attr}, which {REASSIGNED_ATTRIBUTES[node.attr]}")
        self.generic_visit(node)


def defined_names(source):
    """Top-level names a cell defines (assignments, functions, classes)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


@functools.lru_cache
def names_tests_use(solution_path):
    """Names that one locked cell of the solution defines and another uses: the tests' tools.

    A name that an editable cell of the solution sets too (e.g. SCHEDULE, the student's choice of
    schedule) is the student's to set, not a tool of the tests.
    """
    cells = [c for c in nbformat.read(solution_path, as_version=4).cells if c.cell_type == "code"]
    locked = [c.source for c in cells if is_locked(c.metadata.get("nbgrader", {}))]
    editable = set()
    for cell in cells:
        if not is_locked(cell.metadata.get("nbgrader", {})):
            with contextlib.suppress(SyntaxError):  # IPython syntax: it sets nothing the tests use
                editable |= defined_names(cell.source)
    used = [{n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)} for source in locked]
    return frozenset(name for i, source in enumerate(locked) for name in defined_names(source)
                     if name not in editable and any(name in names for j, names in enumerate(used) if j != i))


def scan(notebook, release, protected):
    """[(cell label, line, code, why)] for the student-editable code cells of `notebook`."""
    locked = {nbgrader_id(c) for c in release.cells if nbgrader_id(c) and is_locked(c.metadata["nbgrader"])}
    modules = {"torch", "nn", "F", "np", "numpy", "cgan_lib", "plt", "os", "sys", "builtins"}
    transform = TransformerManager().transform_cell
    findings = []
    for index, cell in enumerate(notebook.cells):
        grade_id = nbgrader_id(cell)
        if cell.cell_type != "code" or grade_id in locked:
            continue  # nbgrader replaces locked and test cells: what the student wrote there never runs
        try:
            source = transform(cell.source)
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue  # it cannot run either
        scanner = _Scanner(modules, protected)
        scanner.visit(tree)
        lines = source.splitlines()
        label = f"cell {grade_id!r}" if grade_id else f"cell {index + 1}"
        findings += [(label, line, lines[line - 1].strip()[:100], why) for line, why in scanner.found]
    return findings


