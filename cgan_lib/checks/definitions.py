"""Which statements of a student's cell the probe process loads: definitions that run no code.

When the grader loads a notebook for its tests, it takes from each cell the imports,
functions, classes and constants, and nothing that would run code while loading:

    kept      import ...; def f(...); class G(nn.Module): ...; LATENT = 100; img_dim = int(np.prod(img_shape))
    left out  print(G); for epoch in ...: ...; G = Generator(); torch.allclose = ...; %%capture
              a decorator, default value, annotation or base class that calls code of the notebook;
              a class with a metaclass or one of the hooks Python runs when a class is made

So the student's code runs only when a test calls it, and then only the code of the
answer under test: another cell cannot change what the tests see.
"""
import ast

SAFE_BUILTINS = {"int", "float", "str", "bool", "bytes", "tuple", "list", "dict", "set", "frozenset", "len", "range",
                 "abs", "min", "max", "round", "sum", "sorted", "Path"}
SAFE_CALLS = {"np.prod", "numpy.prod", "np.sqrt", "numpy.sqrt", "torch.device", "torch.tensor", "torch.zeros",
              "torch.ones", "torch.arange", "torch.randn", "torch.rand", "torch.manual_seed", "torch.Size"}
SAFE_CALL_ROOTS = {"math"}             # math.prod(...), math.sqrt(...): pure functions
SAFE_DECORATORS = {"staticmethod", "classmethod", "property", "torch.no_grad", "torch.inference_mode",
                   "torch.enable_grad", "torch.compile", "functools.lru_cache", "functools.cache",
                   "functools.cached_property", "abc.abstractmethod", "typing.overload", "typing.final"}
CLASS_TIME_HOOKS = {"__init_subclass__", "__set_name__", "__class_getitem__", "__prepare__", "__mro_entries__"}


def _root(node):
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def _is_layer(node):
    """nn.Linear(...), nn.MSELoss(), torch.nn.Tanh(): a layer of torch.nn, made by its own constructor."""
    name = _dotted(node) or ""
    head, _, last = name.rpartition(".")
    return head in ("nn", "torch.nn") and last[:1].isupper()


class _Policy:
    def __init__(self, own_names):
        self.own = own_names  # functions and classes the notebook defines: never called while loading

    def expression(self, node):
        """Whether evaluating `node` can run no code of the notebook."""
        if node is None:
            return True
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
                return False
            if isinstance(sub, ast.Lambda):
                if not all(self.expression(d) for d in sub.args.defaults + sub.args.kw_defaults):
                    return False
            if isinstance(sub, ast.Call):
                if not self._safe_call(sub):
                    return False
        return True

    def _safe_call(self, call):
        func = call.func
        known = (isinstance(func, ast.Name) and func.id in SAFE_BUILTINS) or _dotted(func) in SAFE_CALLS or \
                (isinstance(func, ast.Attribute) and _root(func) in SAFE_CALL_ROOTS) or _is_layer(func)
        arguments = [*call.args, *(k.value for k in call.keywords)]
        # a library function handed a function of the notebook (np.vectorize(f)(1)) would run it
        handed_own = any(isinstance(n, ast.Name) and n.id in self.own for a in arguments for n in ast.walk(a))
        handed_code = any(isinstance(n, ast.Lambda) for a in arguments for n in ast.walk(a))
        return known and not handed_own and not handed_code

    def decorator(self, node):
        if isinstance(node, ast.Attribute) and node.attr in ("setter", "getter", "deleter") and \
                isinstance(node.value, ast.Name):
            return True  # @value.setter of a property
        target = node.func if isinstance(node, ast.Call) else node
        arguments = [*node.args, *(k.value for k in node.keywords)] if isinstance(node, ast.Call) else []
        return (target.id if isinstance(target, ast.Name) else _dotted(target)) in SAFE_DECORATORS and \
            all(self.expression(a) for a in arguments)

    def function(self, node):
        args = node.args
        annotations = [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs] + \
                      [a.annotation for a in (args.vararg, args.kwarg) if a] + [node.returns]
        return (all(self.decorator(d) for d in node.decorator_list) and
                all(self.expression(e) for e in args.defaults + args.kw_defaults + annotations))

    def klass(self, node):
        if node.keywords or not all(self.decorator(d) for d in node.decorator_list):
            return False
        if not all(isinstance(b, (ast.Name, ast.Attribute)) for b in node.bases):
            return False
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if item.name in CLASS_TIME_HOOKS or not self.function(item):
                    return False
            elif not (self.docstring(item) or isinstance(item, ast.Pass) or self.constant(item)):
                return False
        return True

    @staticmethod
    def docstring(node):
        return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)

    def constant(self, node):
        if isinstance(node, ast.Assign):
            targets_ok = all(isinstance(t, ast.Name) or (isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name) for e in t.elts))
                             for t in node.targets)
            return targets_ok and self.expression(node.value)
        if isinstance(node, ast.AnnAssign):
            return isinstance(node.target, ast.Name) and self.expression(node.annotation) and self.expression(node.value)
        return False

    def statement(self, node):
        """(kept, why not) for one top-level statement."""
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)) or self.docstring(node):
            return True, ""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self.function(node), "a decorator, default value or annotation of it calls code"
        if isinstance(node, ast.ClassDef):
            return self.klass(node), ("its class statement would run code (a metaclass, a decorator, a class-creation "
                                      "hook, or a class attribute computed by a call)")
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            return self.constant(node), "it is not a constant (it calls code, or assigns into an object)"
        return False, "it is a statement, not a definition"


def own_names(trees):
    """Names of the functions and classes that the cells (parsed) define at top level."""
    return {node.name for tree in trees for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def transform(source):
    """The cell as Python: IPython's magics and shell escapes turned into calls (which are then left out)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:  # no IPython here, or a cell it cannot transform: parse it as it is
        return source


def split(tree, source, own):
    """(module of the kept statements, [(line, code, why)] of those left out)."""
    policy = _Policy(own)
    kept, left_out = [], []
    for node in tree.body:
        ok, why = policy.statement(node)
        if ok:
            kept.append(node)
        else:
            code = (ast.get_source_segment(source, node) or "").strip().splitlines()
            left_out.append((node.lineno, code[0][:120] if code else "", why))
    return ast.Module(body=kept, type_ignores=[]), left_out
