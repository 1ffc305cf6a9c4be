"""The Network Visualization probe: call the student's function with instrumented models, report what it did.

    netviz_run(function, calls=[{"args": [...], "kwargs": {...}}], seed=0)

Models cannot cross the wire, so an argument {"model": kind} (kind: cgan_lib.checks.netviz_models.KINDS)
stands for a fresh model built here. Each model records, as data:

    forwards          how many times it ran, and in how many of them it was in training mode
    mode_after        "eval" or "train" after the call
    changed           weights and buffers (BatchNorm statistics) whose values changed
    grads_left        weights left holding a .grad; requires_grad_changed: weights whose flag changed
    inputs            a classifier's input at each run (the first MAX_RECORDS), detached
    noise, labels     a generator's inputs at each call (through generator(...))
    gradient_steps    how many gradients were taken with respect to the images it was given
    events            the runs ("F") and those gradients ("G") in the order they happened
    leaks             of those, how many were added to a .grad that still held the gradient of an
                      earlier run of the model (the image's .grad was not reset between steps)

and the call reports its value (tensors detached; value_requires_grad says which required grad),
the exception it raised, and which tensor arguments it changed in place. Python's, NumPy's and
torch's random generators are seeded before each call.
"""
import random

import numpy as np
import torch

from cgan_lib.checks.netviz_models import build
from cgan_lib.checks.probes import _Warnings, as_data, error_info, op

MAX_RECORDS = 2000
MAX_EVENTS = 100_000
MAX_GRAPH_NODES = 200   # how far back from a model input the probe looks for the image it came from


class _Recorder:
    """Hooks on one model: its runs, the images it was given and the gradients taken with respect to them."""

    def __init__(self, kind, model):
        self.kind, self.model = kind, model
        self.before = {name: t.detach().clone() for name, t in self._tensors()}
        self.flags = {name: p.requires_grad for name, p in model.named_parameters()}
        self.forwards = self.train_forwards = self.steps = self.leaks = 0
        self.inputs, self.noise, self.labels, self.events = [], [], [], []
        self.leaves, self.fresh, self.accumulated_at = {}, {}, {}
        if kind == "generator":
            model.register_forward_pre_hook(self._generator_call, with_kwargs=True)
            first = next(m for m in model.model if list(m.parameters()))
        else:
            first = model.conv[0]   # every path to the scores runs it, model.forward(X) included
        first.register_forward_pre_hook(self._run)

    def _tensors(self):
        yield from self.model.named_parameters()
        yield from self.model.named_buffers()

    def _run(self, module, args):
        self.forwards += 1
        self._event("F")
        self.train_forwards += any(m.training for m in self.model.modules())
        x = args[0] if args else None
        if self.kind != "generator" and torch.is_tensor(x):
            if len(self.inputs) < MAX_RECORDS:
                self.inputs.append(x.detach().clone())
            if x.requires_grad:
                for leaf in _leaves(x):
                    self._watch(leaf)

    def _generator_call(self, module, args, kwargs):
        noise = args[0] if args else kwargs.get("noise")
        labels = args[1] if len(args) > 1 else kwargs.get("labels")
        if torch.is_tensor(noise) and len(self.noise) < MAX_RECORDS:
            self.noise.append(noise.detach().clone())
            self.labels.append(labels.detach().clone() if torch.is_tensor(labels) else None)

    def _watch(self, leaf):
        key = id(leaf)
        if key in self.leaves:
            return
        self.leaves[key] = leaf  # kept alive, so that no other tensor gets its id

        def fresh(grad):  # this backward's gradient, before it is added to leaf.grad
            self.steps += 1
            self._event("G")
            self.fresh[key] = grad.detach().clone()

        def accumulated(tensor):  # leaf.grad after the addition: more than `fresh` if it was not reset
            new = self.fresh.pop(key, None)
            if new is not None and tensor.grad is not None:
                stale = (tensor.grad - new).abs().max()
                if stale > 1e-6 * (new.abs().max() + 1e-12) and self.accumulated_at.get(key, self.forwards) < self.forwards:
                    self.leaks += 1
            self.accumulated_at[key] = self.forwards

        leaf.register_hook(fresh)
        leaf.register_post_accumulate_grad_hook(accumulated)

    def _event(self, kind):
        if len(self.events) < MAX_EVENTS:
            self.events.append(kind)

    def report(self):
        changed = [name for name, t in self._tensors() if not torch.equal(t.detach(), self.before[name])]
        return {"kind": self.kind, "forwards": self.forwards, "train_forwards": self.train_forwards,
                "mode_after": "train" if any(m.training for m in self.model.modules()) else "eval",
                "changed": changed,
                "grads_left": [name for name, p in self.model.named_parameters() if p.grad is not None],
                "requires_grad_changed": [name for name, p in self.model.named_parameters()
                                          if p.requires_grad != self.flags[name]],
                "gradient_steps": self.steps, "leaks": self.leaks, "events": "".join(self.events),
                "inputs": self.inputs, "noise": self.noise, "labels": self.labels}


def _leaves(x):
    """The tensors with requires_grad whose gradients a backward through `x` accumulates (x itself when it is one)."""
    if x.grad_fn is None:
        return [x]
    found, seen, stack = [], set(), [x.grad_fn]
    while stack and len(seen) < MAX_GRAPH_NODES:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # an AccumulateGrad node: the end of the graph
        if torch.is_tensor(variable):
            found.append(variable)
        else:
            stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _argument(value, recorders):
    """A fresh model for a {"model": kind} placeholder, a copy of a tensor (never the caller's own), else `value`."""
    if isinstance(value, dict) and set(value) == {"model"}:
        model = build(value["model"])
        recorders.append(_Recorder(value["model"], model))
        return model
    if torch.is_tensor(value):
        return value.detach().clone()
    return value


def _requires_grad(value):
    if torch.is_tensor(value):
        return [value.requires_grad]
    if isinstance(value, (tuple, list)):
        return [flag for item in value for flag in _requires_grad(item)]
    return []


@op
def netviz_run(definition, *, calls, seed=0):
    """Call `definition(*args, **kwargs)` for each call, models built for each; one report per call."""
    results = []
    with _Warnings() as caught:
        for call in calls:
            recorders = []
            args = [_argument(a, recorders) for a in call.get("args", [])]
            kwargs = {k: _argument(v, recorders) for k, v in call.get("kwargs", {}).items()}
            given = {i: a.detach().clone() for i, a in enumerate(args) if torch.is_tensor(a)}
            _seed(call.get("seed", seed))
            result = {}
            try:
                value = definition(*args, **kwargs)
                result.update(value=as_data(value), value_requires_grad=_requires_grad(value))
            except Exception as exc:
                result["error"] = error_info(exc)
            result["models"] = [r.report() for r in recorders]
            result["changed_arguments"] = [i for i, a in given.items() if not torch.equal(args[i].detach(), a)]
            results.append(result)
    return {"results": results, "warnings": caught.messages()}
