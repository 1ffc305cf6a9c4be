"""Probes: run the student's code on given inputs and report what it did, as plain data.

A probe never decides whether the code is right; the judge (cgan_lib.checks.judge) does
that from the data. In the notebook a probe runs in the student's own kernel; when the
lab is graded it runs in a sandboxed process of its own (cgan_lib.checks.server) and the
judge runs in the grader, where student code never runs. Every probe takes the student's
definition (a class or function) and keyword arguments of plain data, and returns plain
data (numbers, strings, lists, dicts, CPU tensors; see cgan_lib.checks.wire).

    module_run        build a model class, switch modes, call it, train it towards a target
    function_run      call a function several times
    train_step_run    call train_step on recording reference networks and optimizers
    training_run      train the reference networks with train_step; keep checkpoints
    training_segment  one stretch of that run: the checkpoints around it and its draws
"""
import hashlib
import os
import traceback
import warnings

import torch
import torch.nn as nn

from cgan_lib.checks.reference import reference_models

OPS = {}
LIBRARY_DIRS = tuple(os.path.dirname(os.path.dirname(m.__file__)) + os.sep for m in (torch, os))  # site-packages, stdlib
CGAN_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
MAX_REPR = 300


def op(fn):
    OPS[fn.__name__] = fn
    return fn


# --------------------------------------------------------------------------- reporting
def error_info(exc):
    """An exception as data: type, message, and the student's own frames (file, line, code)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(LIBRARY_DIRS + (CGAN_LIB_DIR,))]
    return {"type": type(exc).__name__, "message": str(exc)[:2000],
            "where": [[f.filename, f.lineno or 0, (f.line or "").strip()[:200]] for f in frames[-3:]],
            "exception": exc}  # local only: cgan_lib.checks keeps it for the traceback, never sends it


def as_data(value, depth=0):
    """`value` if it is plain data (tensors detached onto the CPU), else a description of it."""
    if torch.is_tensor(value):
        return value.detach().cpu().clone()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and depth < 3 and len(value) <= 16:
        return {"sequence": type(value).__name__, "items": [as_data(v, depth + 1) for v in value]}
    return {"object": type(value).__name__, "repr": repr(value)[:MAX_REPR]}


class _Warnings(warnings.catch_warnings):
    """Collect the warnings the student's code raises (the judge may name one), show none."""

    def __init__(self):
        super().__init__(record=True)

    def __enter__(self):
        self.caught = super().__enter__()
        warnings.simplefilter("always")
        return self

    def messages(self):
        return [f"{w.category.__name__}: {w.message}"[:MAX_REPR] for w in self.caught][:20]


# --------------------------------------------------------------------------- models and functions
@op
def module_run(definition, *, seed, script, device="cpu"):
    """Build `definition()` after torch.manual_seed(seed), then run `script`, a list of steps:

        {"do": "eval"} / {"do": "train"}
        {"do": "call", "args": [tensors], "input_grad": [indices]}   -> output (and d sum(output) / d input)
        {"do": "fit", "target": t, "steps": k, "lr": lr, "batch_size": n, "latent_dim": d,
         "n_classes": c, "seed": s}   Adam on mean((model(noise, labels) - t)^2), in training mode

    Returns {"results": [one dict per step]}; the first step that raises ends the script.
    """
    results = []
    with _Warnings() as caught:
        try:
            torch.manual_seed(seed)
            model = definition()
            if isinstance(model, nn.Module):
                model = model.to(device)
        except Exception as exc:  # the student's constructor
            return {"build_error": error_info(exc), "results": [], "warnings": caught.messages()}
        for step in script:
            try:
                results.append(_module_step(model, step, device))
            except Exception as exc:
                results.append({"error": error_info(exc)})
                break
    return {"results": results, "warnings": caught.messages(),
            "is_module": isinstance(model, nn.Module)}


def _module_step(model, step, device):
    kind = step["do"]
    if kind in ("eval", "train"):
        getattr(model, kind)()
        return {}
    if kind == "call":
        grad_of = set(step.get("input_grad", []))
        args = [a.to(device).requires_grad_(i in grad_of) if torch.is_tensor(a) else a
                for i, a in enumerate(step["args"])]
        out = model(*args)
        result = {"output": as_data(out)}
        if grad_of and torch.is_tensor(out) and out.requires_grad:
            grads = torch.autograd.grad(out.sum(), [args[i] for i in sorted(grad_of)], allow_unused=True)
            result["input_grads"] = [None if g is None else g.detach().cpu() for g in grads]
        return result
    if kind == "fit":
        generator = torch.Generator().manual_seed(step["seed"])
        optimizer = torch.optim.Adam(model.parameters(), lr=step["lr"])
        model.train()
        for _ in range(step["steps"]):
            n = step["batch_size"]
            noise = torch.randn(n, step["latent_dim"], generator=generator).to(device)
            labels = torch.randint(0, step["n_classes"], (n,), generator=generator).to(device)
            optimizer.zero_grad()
            ((model(noise, labels) - step["target"]) ** 2).mean().backward()
            optimizer.step()
        return {}
    raise ValueError(f"unknown module_run step {kind!r}")


@op
def function_run(definition, *, calls, seed=0):
    """Call `definition(*args, **kwargs)` for each call in turn (torch and numpy seeded once, at the start)."""
    results = []
    with _Warnings() as caught:
        _seed_all(seed)
        for call in calls:
            try:
                results.append({"value": as_data(definition(*call.get("args", []), **call.get("kwargs", {})))})
            except Exception as exc:
                results.append({"error": error_info(exc)})
    return {"results": results, "warnings": caught.messages()}


def _seed_all(seed):
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass


# --------------------------------------------------------------------------- train_step
class RecordingAdam(torch.optim.Adam):
    """Adam that logs, at each step(), the gradients it is about to apply."""

    def __init__(self, params, name, log, **kwargs):
        super().__init__(params, **kwargs)
        self.name, self.log = name, log

    def step(self, closure=None):
        grads = [None if p.grad is None else p.grad.detach().clone() for p in self.param_groups[0]["params"]]
        self.log.append({"kind": "step", "net": self.name, "grads": grads})
        return super().step(closure)

    def zero_grad(self, set_to_none=True):
        self.log.append({"kind": "zero_grad", "net": self.name})
        return super().zero_grad(set_to_none)


def _recorder_events(raw):
    events = []
    for entry in raw:
        if isinstance(entry, dict):
            events.append(entry)
        elif entry[0] == "G":
            events.append({"kind": "G", "noise": entry[1], "labels": entry[2]})
        else:
            events.append({"kind": "D", "images": entry[1], "labels": entry[2]})
    return events


def _build(setup, device):
    G, D = reference_models(setup["latent_dim"], setup["n_classes"], setup["label_dim"], setup["hidden"],
                            seed=setup["model_seed"], device=device, batch_norm=bool(setup.get("batch_norm")))
    log = []
    G.recorder = D.recorder = log  # one list: the order of calls and steps is kept
    betas = tuple(setup["betas"])
    optimizer_G = RecordingAdam(G.parameters(), "G", log, lr=setup["lr"], betas=betas)
    optimizer_D = RecordingAdam(D.parameters(), "D", log, lr=setup["lr"], betas=betas)
    return G, D, optimizer_G, optimizer_D, log


@op
def train_step_run(definition, *, setup, batches, planted=None, device="cpu"):
    """Call train_step once per batch on fresh recording reference networks and Adam optimizers.

    `setup`: latent_dim, n_classes, label_dim, hidden, model_seed, lr, betas, rng_seed.
    `planted`: {"G": [tensors], "D": [tensors]} put in the weights' .grad before the first call.
    For each call: the events in order (every G and D call with its inputs, every
    zero_grad() and step() with the gradients it applied), what train_step returned, the
    warnings, and the weights afterwards.
    """
    G, D, optimizer_G, optimizer_D, log = _build(setup, device)
    for name, model in (("G", G), ("D", D)):
        for p, g in zip(model.parameters(), (planted or {}).get(name, [])):
            p.grad = g.to(device).clone()
    _seed_all(setup["rng_seed"])
    calls = []
    for imgs, labels in batches:
        log.clear()
        entry = {}
        with _Warnings() as caught:
            try:
                entry["returned"] = as_data(definition(G, D, optimizer_G, optimizer_D, nn.MSELoss(),
                                                       imgs.to(device), labels.to(device)))
            except Exception as exc:
                entry["error"] = error_info(exc)
        entry["events"] = _recorder_events(log)
        entry["warnings"] = caught.messages()
        entry["params"] = {"G": [p.detach().cpu().clone() for p in G.parameters()],
                           "D": [p.detach().cpu().clone() for p in D.parameters()]}
        calls.append(entry)
        if "error" in entry:
            break
    return {"calls": calls}


# --------------------------------------------------------------------------- the training run
_RUNS = {}  # handle -> what training_segment serves (this process only)


def state_bytes(tensors):
    """The bytes of a list of tensors, for hashing a checkpoint."""
    return b"".join(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() for t in tensors)


def _snapshot(G, D, optimizer_G, optimizer_D):
    """Weights and Adam state of both networks, as one flat list of tensors (a fixed order)."""
    tensors = [p.detach().cpu().clone() for p in (*G.parameters(), *D.parameters())]
    for optimizer in (optimizer_G, optimizer_D):
        for p in optimizer.param_groups[0]["params"]:
            state = optimizer.state.get(p, {})
            tensors.append(torch.as_tensor(state.get("step", 0.0), dtype=torch.float32).detach().cpu().reshape(()).clone())
            for key in ("exp_avg", "exp_avg_sq"):
                tensors.append(state[key].detach().cpu().clone() if key in state else torch.zeros_like(p).cpu())
    return tensors


def batch_order(n_images, batch_size, steps, seed):
    """The image indices of each step's batch: reshuffled each time the images run out."""
    generator = torch.Generator().manual_seed(seed)
    batches, order, position = [], torch.randperm(n_images, generator=generator), 0
    for _ in range(steps):
        if position + batch_size > n_images:
            order, position = torch.randperm(n_images, generator=generator), 0
        batches.append(order[position:position + batch_size])
        position += batch_size
    return batches


def _projection(grads, directions):
    flat = torch.cat([g.reshape(-1).double() for g in grads])
    return directions @ flat


@op
def training_run(definition, *, setup, images, labels, steps, batch_size, segment, probe_seed, device="cpu"):
    """Train the reference networks with `steps` calls of train_step on batches of (images, labels).

    Batches follow batch_order(..., setup["rng_seed"]), which the grader recomputes. Every `segment`
    steps the weights and Adam state are kept, and their SHA-256 reported: the grader then
    asks for a few segments (training_segment) and checks each step of them against the
    reference update. Each step also reports its step() gradients projected on 4 random
    directions (seeded with `probe_seed`), to tell which of the draws each update used.
    Returns the final generator weights, the checkpoint hashes and a handle.
    """
    G, D, optimizer_G, optimizer_D, log = _build(setup, device)
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    directions = {"G": torch.randn(4, n_g, generator=torch.Generator().manual_seed(probe_seed), dtype=torch.float64),
                  "D": torch.randn(4, n_d, generator=torch.Generator().manual_seed(probe_seed + 1), dtype=torch.float64)}
    checkpoints, draws, projections = [_snapshot(G, D, optimizer_G, optimizer_D)], [], []
    _seed_all(setup["rng_seed"])
    with _Warnings():
        for step, idx in enumerate(batch_order(len(labels), batch_size, steps, setup["rng_seed"])):
            log.clear()
            try:
                definition(G, D, optimizer_G, optimizer_D, nn.MSELoss(), images[idx].to(device), labels[idx].to(device))
            except Exception as exc:
                return {"error": error_info(exc), "failed_step": step}
            events = _recorder_events(log)
            draws.append([e if e["kind"] == "G" else {"kind": "step", "net": e["net"]}
                          for e in events if e["kind"] in ("G", "step")])
            projections.append([[e["net"], None if any(g is None for g in e["grads"])
                                 else _projection(e["grads"], directions[e["net"]])]
                                for e in events if e["kind"] == "step"])
            if (step + 1) % segment == 0 or step + 1 == steps:
                checkpoints.append(_snapshot(G, D, optimizer_G, optimizer_D))
    handle = f"run{len(_RUNS)}"
    _RUNS[handle] = {"checkpoints": checkpoints, "draws": draws}
    return {"handle": handle, "final_G": [p.detach().cpu().clone() for p in G.parameters()],
            "hashes": [hashlib.sha256(state_bytes(c)).hexdigest() for c in checkpoints],
            "projections": projections}


@op
def training_segment(definition, *, handle, index, segment):
    """Checkpoints `index` and `index + 1` of a training run, and the generator draws of the steps between."""
    run = _RUNS[handle]
    first = index * segment
    return {"start": run["checkpoints"][index], "end": run["checkpoints"][index + 1],
            "draws": run["draws"][first:first + segment]}

