"""train_step judged by its effect: the update it makes, compared with the reference update
computed from the same random draws.

    check_train_step(train_step, opt)

How: `train_step` is called a few times on small reference networks (no random layers,
so an update is a function of the draws) with recording Adam optimizers; stale values
are planted in the weights' .grad first. The probe reports, at the model boundary, every
call of G and D with its arguments, and the gradients each optimizer step() applied.
The judge then computes, from the noise and labels the student's code gave G, what one
"Train Generator" update and one "Train Discriminator" update must apply:

    g_loss = MSE(D(G(z, gen_labels), gen_labels), 1)                                         (G's weights)
    d_loss = (MSE(D(real_imgs, labels), 1) + MSE(D(fake_imgs.detach(), gen_labels), 0)) / 2  (D's weights)

and compares. Any way of writing that is accepted: one or two discriminator calls,
concatenated or separate batches, reused (detached) or fresh fakes, summed or averaged
D loss (Adam makes the scale of a loss irrelevant, so any positive scale between 1/8 and 8
counts as equal), either update first. When an update does not match, the updates that
known mistakes make from the same draws are computed too, and the message names the
one that matches. Across the calls: the draws change, every class is drawn, the noise
is N(0, 1), and the weights change only by the optimizers' steps.
"""
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from cgan_lib.checks.core import fail, ok, probe
from cgan_lib.checks.latent import expect_standard_normal
from cgan_lib.checks.reference import (AdamReplica, discriminator_grads, generate, generator_grads,
                                       reference_models)
from cgan_lib.device import device

MATCH = 1e-3        # relative difference below which two updates are the same (CALIBRATION.md)
DIAGNOSE = 2e-2     # ... below which a failing update is taken to be a known mistake
SCALES = (1 / 8, 8)  # loss scales Adam makes equivalent
WEIGHTS = 1e-5      # relative difference of the weights after the call from what the steps applied


@dataclass
class Setup:
    """One judged run of train_step: the networks, optimizers, batches and planted gradients."""
    latent_dim: int
    n_classes: int
    label_dim: int = 50
    hidden: int = 128
    batch_norm: bool = False
    model_seed: int = 0
    rng_seed: int = 0
    lr: float = 2e-4
    betas: tuple = (0.5, 0.999)
    batch_sizes: tuple = (64, 64, 64)
    plant: bool = True
    batches: list = field(default_factory=list)
    planted: dict = field(default_factory=dict)

    def wire(self):
        return {"latent_dim": self.latent_dim, "n_classes": self.n_classes, "label_dim": self.label_dim,
                "hidden": self.hidden, "batch_norm": self.batch_norm, "model_seed": self.model_seed, "rng_seed": self.rng_seed,
                "lr": self.lr, "betas": list(self.betas)}


def make_setup(opt, batch_sizes=(64, 64, 64), seed=0, **overrides):
    """A Setup for `opt` (latent_dim, n_classes, lr, b1, b2), with synthetic real batches and planted gradients."""
    setup = Setup(latent_dim=opt.latent_dim, n_classes=opt.n_classes, label_dim=getattr(opt, "label_dim", 50),
                  model_seed=seed, rng_seed=seed, lr=opt.lr, betas=(opt.b1, opt.b2), batch_sizes=tuple(batch_sizes))
    for key, value in overrides.items():
        setattr(setup, key, value)
    draw = torch.Generator().manual_seed(10_000 + seed)
    setup.batches = [(torch.rand(n, 1, 28, 28, generator=draw) * 2 - 1,
                      torch.randint(0, setup.n_classes, (n,), generator=draw)) for n in setup.batch_sizes]
    if setup.plant:
        setup.planted = _stale_gradients(setup, draw)
    return setup


def _stale_gradients(setup, draw):
    """Gradients of a typical size, in random directions: what zero_grad() must clear."""
    G, D = reference_models(setup.latent_dim, setup.n_classes, setup.label_dim, setup.hidden, seed=setup.model_seed,
                            batch_norm=setup.batch_norm)
    n = 16
    noise, labels = torch.randn(n, setup.latent_dim, generator=draw), torch.randint(0, setup.n_classes, (n,), generator=draw)
    g_grads, d_grads, _ = generator_grads(G, D, dict(G.named_parameters()), dict(D.named_parameters()), noise, labels)
    planted = {}
    for name, grads in (("G", g_grads), ("D", d_grads)):
        typical = torch.cat([g.abs().reshape(-1) for g in grads]).mean()
        planted[name] = [torch.randn(g.shape, generator=draw) * typical for g in grads]
    return planted


def run_train_step(train_step, setup):
    """The probe's report of train_step called once per batch of `setup`."""
    return probe("train_step_run", train_step, setup=setup.wire(), batches=setup.batches,
                 planted=setup.planted or None, device=str(device))


# --------------------------------------------------------------------------- comparing updates
def compare(student, reference):
    """(scale, relative difference) of two lists of gradients: student ~ scale * reference."""
    s = torch.cat([g.reshape(-1).double() for g in student])
    r = torch.cat([g.reshape(-1).double() for g in reference])
    rr = float(r @ r)
    if rr == 0:
        return (1.0, 0.0) if float(s @ s) == 0 else (float("nan"), float("inf"))
    scale = float(s @ r) / rr
    return scale, float((s - scale * r).norm() / (abs(scale) * rr ** 0.5 + 1e-30))


def matches(student, reference, tolerance=MATCH):
    scale, difference = compare(student, reference)
    return SCALES[0] <= scale <= SCALES[1] and difference < tolerance, scale, difference


def _add(*grad_lists):
    return [sum(parts) for parts in zip(*grad_lists)]


def _grads(event, params):
    return [torch.zeros_like(p) if g is None else g.to(p.dtype) for g, p in zip(event["grads"], params.values())]


# --------------------------------------------------------------------------- one call
@dataclass
class CallView:
    """One call of train_step as the judge sees it, with the weights before and after each step."""
    index: int
    n: int
    real_imgs: torch.Tensor
    real_labels: torch.Tensor
    g_calls: list                  # [(event position, noise, labels)]
    g_step: dict
    d_step: dict
    g_before: dict
    d_before: dict
    g_after: dict
    d_after: dict


def _view(index, call, batch, state, replicas):
    events = call["events"]
    steps = [(i, e) for i, e in enumerate(events) if e["kind"] == "step"]
    counts = {net: sum(e["net"] == net for _, e in steps) for net in ("G", "D")}
    if counts != {"G": 1, "D": 1}:
        order = [e["net"] for _, e in steps]
        fail(f"Expected optimizer_G.step() once and optimizer_D.step() once in each call of train_step; call "
             f"{index + 1} called step() on {order or 'neither'} (G: {counts['G']}, D: {counts['D']}). Train the "
             f"generator with one step, then the discriminator with one step.")
    (g_pos, g_step), = [(i, e) for i, e in steps if e["net"] == "G"]
    (d_pos, d_step), = [(i, e) for i, e in steps if e["net"] == "D"]
    g_calls = [(i, e["noise"].to(torch.float32), e["labels"]) for i, e in enumerate(events) if e["kind"] == "G"]
    if not g_calls:
        fail("train_step never called the generator: generate images from noise and labels with "
             "generator(z, gen_labels).")
    g_before, d_before = state
    g_after = replicas["G"].step(_grads(g_step, g_before))
    d_after = replicas["D"].step(_grads(d_step, d_before))
    view = CallView(index, len(batch[1]), batch[0], batch[1], g_calls, {**g_step, "pos": g_pos},
                    {**d_step, "pos": d_pos}, g_before, d_before, g_after, d_after)
    for name, expected, reported in (("generator", g_after, call["params"]["G"]),
                                     ("discriminator", d_after, call["params"]["D"])):
        _, difference = compare(list(reported), list(expected.values()))
        if difference > WEIGHTS:
            fail(f"After train_step the {name}'s weights are not what its optimizer's step() made of them "
                 f"(relative difference {difference:.2g}): change the weights only with optimizer.step().")
    return view


def _reference(view, G, D, a, b):
    """The reference gradients when G's update used G call `a` and D's update the images of G call `b`."""
    _, z_a, y_a = view.g_calls[a]
    pos_b, z_b, y_b = view.g_calls[b]
    d_at_g_step = view.d_before if view.g_step["pos"] < view.d_step["pos"] else view.d_after
    g_ref, g_left_in_d, g_loss = generator_grads(G, D, view.g_before, d_at_g_step, z_a, y_a)
    fakes = generate(G, view.g_before if pos_b < view.g_step["pos"] else view.g_after, z_b, y_b)
    d_ref, d_loss = discriminator_grads(D, view.d_before, view.real_imgs, view.real_labels, fakes, y_b)
    return SimpleNamespace(a=a, b=b, g=g_ref, g_left_in_d=g_left_in_d, d=d_ref, g_loss=g_loss, d_loss=d_loss,
                           fakes=fakes, z=z_a, y=y_a, y_b=y_b, d_at_g_step=d_at_g_step)


def _judge_call(view, G, D, planted):
    """The matching reference (with the fitted loss scales), or TestFailed naming the mistake."""
    student_g, student_d = _grads(view.g_step, view.g_before), _grads(view.d_step, view.d_before)
    pre_g_step = [i for i, (pos, _, _) in enumerate(view.g_calls) if pos < view.g_step["pos"]]
    if not pre_g_step:
        fail("The generator update used no generated images: in the \"Train Generator\" block, generate "
             "images with generator(z, gen_labels) before g_loss.backward() and optimizer_G.step().")
    references = [_reference(view, G, D, a, b) for a in pre_g_step for b in range(len(view.g_calls))]
    g_match = next((r for r in references if matches(student_g, r.g)[0]), None)
    d_match = next((r for r in references if matches(student_d, r.d)[0]), None)
    if g_match is None:
        _diagnose_generator(view, G, D, references, student_g, planted)
    if d_match is None:
        _diagnose_discriminator(view, G, D, [r for r in references if r.a == g_match.a] or references, student_d, planted)
    return g_match, d_match, matches(student_g, g_match.g)[1], matches(student_d, d_match.d)[1]


def _named(student, candidates):
    """The (message of the) known mistake whose gradients `student` matches best, if any is close."""
    best = None
    for message, grads in candidates:
        scale, difference = compare(student, grads)
        if SCALES[0] <= scale <= SCALES[1] and difference < DIAGNOSE and (best is None or difference < best[0]):
            best = (difference, message)
    return best and best[1]


def _diagnose_generator(view, G, D, references, student, planted):
    r = references[0]
    s = sum(float((g.double() ** 2).sum()) for g in student)
    if s == 0:
        fail("When optimizer_G.step() ran, the generator had no gradients: call g_loss.backward() before "
             "optimizer_G.step() (and optimizer_G.zero_grad() before g_loss.backward(), not after it).")
    candidates = []
    for r in references:
        if planted:
            candidates.append(("The generator's update also applied gradients left over from before train_step: "
                               "call optimizer_G.zero_grad() before g_loss.backward().", _add(planted["G"], r.g)))
            candidates.append(("optimizer_G.step() applied only the gradients left over from before train_step: "
                               "call g_loss.backward() before optimizer_G.step(), and optimizer_G.zero_grad() "
                               "before g_loss.backward().", planted["G"]))
        candidates.append(("g_loss compares the scores of the generated images with `fake` (0). The generator is "
                           "trained towards `valid` (1): it wants the discriminator to call its images real.",
                           generator_grads(G, D, view.g_before, r.d_at_g_step, r.z, r.y, target=0.0)[0]))
        candidates.append(("In the generator update the discriminator scored the generated images with the real "
                           "batch's `labels`; score them with the labels they were generated with (gen_labels).",
                           generator_grads(G, D, view.g_before, r.d_at_g_step, r.z, r.y, scored_with=view.real_labels)[0]))
    named = _named(student, candidates)
    difference = min(compare(student, r.g)[1] for r in references)
    fail(named or (
        f"The generator's update does not match the reference update from the same draws (relative difference "
        f"{difference:.2g}). Expected, in the \"Train Generator\" block: optimizer_G.zero_grad(); gen_imgs = "
        f"generator(z, gen_labels); g_loss = adversarial_loss(discriminator(gen_imgs, gen_labels), valid); "
        f"g_loss.backward(); optimizer_G.step()."))


def _diagnose_discriminator(view, G, D, references, student, planted):
    s = sum(float((g.double() ** 2).sum()) for g in student)
    if s == 0:
        fail("When optimizer_D.step() ran, the discriminator had no gradients: call d_loss.backward() before "
             "optimizer_D.step() (and optimizer_D.zero_grad() before d_loss.backward(), not after it).")
    g_first = view.g_step["pos"] < view.d_step["pos"]
    candidates = []
    for r in references:
        def d(**mistake):
            return discriminator_grads(D, view.d_before, view.real_imgs, mistake.pop("real_labels", view.real_labels),
                                       r.fakes, mistake.pop("fake_labels", r.y_b), **mistake)[0]
        leftovers = "g_loss.backward() also leaves gradients in the discriminator's weights"
        if g_first:
            candidates.append((f"When optimizer_D.step() ran, the discriminator's gradients still held what the "
                               f"generator update left in them ({leftovers}): call optimizer_D.zero_grad() at the "
                               f"start of the discriminator update, right before d_loss.backward().",
                               _add(r.g_left_in_d, r.d)))
        if planted:
            stale = _add(planted["D"], r.g_left_in_d, r.d) if g_first else _add(planted["D"], r.d)
            candidates.append(("The discriminator's update also applied gradients left over from before (and "
                               f"{leftovers}): call optimizer_D.zero_grad() before d_loss.backward().", stale))
        candidates += [
            ("The targets of the discriminator's losses are swapped: real images have the target `valid` (1), "
             "generated images the target `fake` (0).", d(real_target=0.0, fake_target=1.0)),
            ("fake_loss compares the scores of generated images with `valid` (1): generated images have the target "
             "`fake` (0).", d(fake_target=1.0)),
            ("real_loss compares the scores of real images with `fake` (0): real images have the target `valid` (1).",
             d(real_target=0.0)),
            ("The discriminator scored the generated images with the real batch's `labels`; score them with the "
             "labels they were generated with (gen_labels): d(gen_imgs.detach(), gen_labels).",
             d(fake_labels=view.real_labels)),
            ("The discriminator scored the real images with labels other than their own: pass `labels` with "
             "`real_imgs` (real_loss = adversarial_loss(discriminator(real_imgs, labels), valid)).",
             d(real_labels=r.y_b)),
            ("The discriminator update never trained on generated images: fake_loss (their scores against `fake`) "
             "must be part of d_loss, e.g. d_loss = (real_loss + fake_loss) / 2.", d(parts=("real",))),
            ("The discriminator update never trained on the real images: real_loss (the scores of `real_imgs` "
             "against `valid`) must be part of d_loss before d_loss.backward().", d(parts=("fake",))),
        ]
    named = _named(student, candidates)
    difference = min(compare(student, r.d)[1] for r in references)
    fail(named or (
        f"The discriminator's update does not match the reference update from the same draws (relative "
        f"difference {difference:.2g}). Expected, in the \"Train Discriminator\" block: optimizer_D.zero_grad(); "
        f"real_loss = adversarial_loss(discriminator(real_imgs, labels), valid); fake_loss = adversarial_loss("
        f"discriminator(gen_imgs.detach(), gen_labels), fake); d_loss = (real_loss + fake_loss) / 2; "
        f"d_loss.backward(); optimizer_D.step()."))


def _check_returned(returned, view, g_match, d_match, g_scale, d_scale):
    items = returned.get("items") if isinstance(returned, dict) else None
    if not items or len(items) != 2:
        shown = returned.get("repr") if isinstance(returned, dict) and "repr" in returned else repr(returned)[:80]
        fail(f"train_step must return (d_loss, g_loss), two Python floats; it returned {shown}. Keep the "
             f"template's last line: return d_loss.item(), g_loss.item().")
    if not all(isinstance(v, float) for v in items):
        kinds = ", ".join("tensor" if torch.is_tensor(v) else type(v).__name__ for v in items)
        fail(f"train_step must return two Python floats; it returned ({kinds}). Use d_loss.item(), g_loss.item().")
    d_value, g_value = items
    expected_d, expected_g = d_scale * d_match.d_loss, g_scale * g_match.g_loss

    def close(value, expected):
        return abs(value - expected) <= 1e-3 * abs(expected) + 1e-6

    if close(d_value, expected_d) and close(g_value, expected_g):
        return
    if close(d_value, expected_g) and close(g_value, expected_d):
        fail(f"train_step returned ({d_value:.4f}, {g_value:.4f}), which is (g_loss, d_loss): return d_loss first, "
             f"as the template does: return d_loss.item(), g_loss.item().")
    fail(f"train_step returned (d_loss, g_loss) = ({d_value:.4f}, {g_value:.4f}), but the losses its updates used "
         f"are {expected_d:.4f} and {expected_g:.4f}: return the values of the same d_loss and g_loss you called "
         f"backward() on.")


# --------------------------------------------------------------------------- errors and draws
KNOWN_ERRORS = [
    ("backward through the graph a second time",
     "d_loss.backward() went back through the generator's graph, which g_loss.backward() had already freed: in "
     "the discriminator update, score the generated images as gen_imgs.detach() (they are inputs of D's update, "
     "not something to backpropagate into G)."),
    ("does not require grad and does not have a grad_fn",
     "backward() was called on a loss that has no gradient: was it computed under torch.no_grad(), or from "
     ".detach()ed scores or .item() numbers? Compute the losses from the discriminator's outputs directly."),
    ("must match the size of tensor",
     "the batch sizes of two tensors differ: take the batch size from the batch (batch_size = real_imgs.shape[0]) "
     "rather than opt.batch_size or a fixed number, and draw z and gen_labels with it."),
]


def _train_step_error(error, n, data):
    from cgan_lib.checks.core import code_error
    message = code_error(error, f"train_step on a batch of {n}")
    for phrase, explanation in KNOWN_ERRORS:
        if phrase in error.get("message", ""):
            message += f"\n{explanation[0].upper()}{explanation[1:]}"
            break
    fail(message, data)


def _check_draws(views, n_classes):
    first = [view.g_calls[0] for view in views]
    if len(first) > 1 and all(torch.equal(first[0][1], f[1]) for f in first[1:]):
        fail("Every call of train_step gave the generator the same noise: draw new noise (torch.randn) inside "
             "train_step on every call, and do not re-seed the random number generator there.")
    if len(first) > 1 and all(len(f[2]) > 4 and torch.equal(first[0][2], f[2]) for f in first[1:]):
        fail("Every call of train_step gave the generator the same labels: draw new random labels on every call.")
    noise = torch.cat([z for view in views for _, z, _ in view.g_calls])
    expect_standard_normal(noise, "The noise train_step gave the generator", tolerance=0.05)
    drawn = set(torch.cat([y for view in views for _, _, y in view.g_calls]).tolist())
    missing = sorted(set(range(n_classes)) - drawn)
    if missing:
        fail(f"Over {len(views)} calls of train_step the generator was never asked for the classes {missing}: "
             f"draw gen_labels uniformly from all {n_classes} classes, torch.randint(0, opt.n_classes, ...).")


# --------------------------------------------------------------------------- the check
def judge_train_step(report, setup):
    """Judge the probe's report of train_step under `setup`; returns [(d_loss, g_loss)] per call."""
    G, D = reference_models(setup.latent_dim, setup.n_classes, setup.label_dim, setup.hidden, seed=setup.model_seed,
                            batch_norm=setup.batch_norm)
    state = (dict(G.named_parameters()), dict(D.named_parameters()))
    state = tuple({k: v.detach().clone() for k, v in params.items()} for params in state)
    replicas = {"G": AdamReplica(state[0], setup.lr, setup.betas), "D": AdamReplica(state[1], setup.lr, setup.betas)}
    views, losses = [], []
    calls = report["calls"]
    for index, (call, batch) in enumerate(zip(calls, setup.batches)):
        if "error" in call:
            _train_step_error(call["error"], len(batch[1]), report)
        shape_warnings = [w for w in call.get("warnings", []) if "target size" in w]
        try:
            view = _view(index, call, batch, state, replicas)
            g_match, d_match, g_scale, d_scale = _judge_call(view, G, D, setup.planted if index == 0 else None)
        except AssertionError as failure:
            prefix = "" if index == 0 else f"Call {index + 1} of train_step (the earlier calls were right): "
            hint = f"\n(PyTorch warned: {shape_warnings[0]} A discriminator output or a target is not (N, 1).)" \
                if shape_warnings else ""
            raise type(failure)(prefix + str(failure) + hint) from failure.__cause__
        _check_returned(call.get("returned"), view, g_match, d_match, g_scale, d_scale)
        views.append(view)
        losses.append(tuple(call["returned"]["items"]))
        state = (view.g_after, view.d_after)
    if len(calls) < len(setup.batches):
        fail(f"train_step was called {len(setup.batches)} times but reported {len(calls)} calls.")
    _check_draws(views, setup.n_classes)
    return losses


def check_train_step(train_step, opt, batch_sizes=(64, 64, 64), seed=0):
    """The visible train_step tests: three calls on a batch of 64."""
    setup = make_setup(opt, batch_sizes, seed)
    losses = judge_train_step(run_train_step(train_step, setup), setup)
    d_loss, g_loss = losses[0]
    ok(f"All visible train_step tests passed: its updates match the reference from the same draws "
       f"(first call: d_loss {d_loss:.3f}, g_loss {g_loss:.3f}).")
    return losses
