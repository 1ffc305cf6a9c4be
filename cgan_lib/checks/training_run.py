"""A training run of train_step whose result the judge can trust without watching it.

    generator = verified_training_run(train_step, opt, images, labels, steps=..., ...)

train_step trains the reference networks for `steps` steps (where the student's code
runs: the notebook's kernel, or the grader's sandboxed probe process). The probe keeps
the weights and Adam state every `segment` steps and reports their SHA-256 first. The
judge then picks segments at random, asks for their checkpoints and draws, checks the
hashes, and replays each step of them with the reference update: the gradients that
step applied (reported as 4 random projections) must match the reference update from
that step's draws, and the replay must end at the next checkpoint. The last segment is
always checked, so the final generator is the end of a chain of verified updates: a
run cannot be replaced by weights from elsewhere, and a step that is not the reference
update is found whenever its segment is drawn.
"""
import hashlib
import secrets
from dataclasses import dataclass

import torch

from cgan_lib.checks.core import code_error, fail, probe_session
from cgan_lib.checks.probes import batch_order, state_bytes
from cgan_lib.checks.reference import (AdamReplica, discriminator_grads, generate, generator_grads,
                                       reference_models)
from cgan_lib.checks.train_step import MATCH, SCALES, Setup
from cgan_lib.device import device

END_STATE = 1e-3  # relative difference of a replayed segment's end from the reported checkpoint (CALIBRATION.md)


def _split_state(tensors, n_g, n_d):
    """A snapshot (probes._snapshot) as (G weights, D weights, G Adam state, D Adam state)."""
    g, d, rest = tensors[:n_g], tensors[n_g:n_g + n_d], tensors[n_g + n_d:]
    adam = [{"step": rest[3 * i], "exp_avg": rest[3 * i + 1], "exp_avg_sq": rest[3 * i + 2]}
            for i in range(len(rest) // 3)]
    return g, d, adam[:n_g], adam[n_g:]


def _projection(grads, directions):
    return directions @ torch.cat([g.reshape(-1).double() for g in grads])


def _scale_if_same_direction(reported, computed):
    """The scale s with reported ~ s * computed when they match (a loss scale Adam ignores), else None."""
    if reported is None or not torch.is_tensor(reported) or reported.shape != computed.shape:
        return None
    rr = float(computed @ computed)
    if rr == 0:
        return 1.0 if float(reported @ reported) == 0 else None
    scale = float(reported @ computed) / rr
    close = float((reported - scale * computed).norm()) < MATCH * abs(scale) * rr ** 0.5
    return scale if SCALES[0] <= scale <= SCALES[1] and close else None


def _replay_step(G, D, state, events, projections, real_imgs, real_labels, directions, replicas):
    """One reference step from `state` (G and D weights as {name: tensor}); (new state, None) or (None, problem)."""
    g_params, d_params = state
    steps = [(i, e["net"]) for i, e in enumerate(events) if e["kind"] == "step"]
    calls = [(i, e["noise"].float(), e["labels"]) for i, e in enumerate(events) if e["kind"] == "G"]
    if sorted(net for _, net in steps) != ["D", "G"] or len(projections) != 2 or not calls:
        return None, "it did not call optimizer_G.step() and optimizer_D.step() once each"
    g_pos = next(i for i, net in steps if net == "G")
    d_pos = next(i for i, net in steps if net == "D")
    reported = dict((net, proj) for net, proj in projections)
    if g_pos < d_pos:  # generator first: its update sees D before D's step
        g_ref = _generator_match(G, D, g_params, d_params, g_pos, calls, reported["G"], directions["G"])
        g_new = replicas["G"].step(g_ref) if g_ref is not None else None
        d_ref = g_ref and _discriminator_match(D, G, d_params, g_params, g_new, g_pos, calls, real_imgs, real_labels,
                                               reported["D"], directions["D"])
        d_new = replicas["D"].step(d_ref) if d_ref else None
    else:  # discriminator first: the generator's update sees D after its step
        d_ref = _discriminator_match(D, G, d_params, g_params, g_params, g_pos, calls, real_imgs, real_labels,
                                     reported["D"], directions["D"])
        d_new = replicas["D"].step(d_ref) if d_ref is not None else None
        g_ref = d_ref and _generator_match(G, D, g_params, d_new, g_pos, calls, reported["G"], directions["G"])
        g_new = replicas["G"].step(g_ref) if g_ref else None
    if not g_ref:
        return None, "its generator update is not the reference update from its draws"
    if not d_ref:
        return None, "its discriminator update is not the reference update from its draws"
    return (g_new, d_new), None


def _generator_match(G, D, g_params, d_params, g_pos, calls, reported, directions):
    """The gradients (at the student's loss scale) of the G update from a draw that matches the report."""
    for pos, z, y in calls:
        if pos < g_pos:
            grads = generator_grads(G, D, g_params, d_params, z, y)[0]
            scale = _scale_if_same_direction(reported, _projection(grads, directions))
            if scale is not None:
                return [scale * g for g in grads]
    return None


def _discriminator_match(D, G, d_params, g_before, g_after, g_pos, calls, real_imgs, real_labels, reported, directions):
    for pos, z, y in calls:
        fakes = generate(G, g_before if pos < g_pos else g_after, z, y)
        grads = discriminator_grads(D, d_params, real_imgs, real_labels, fakes, y)[0]
        scale = _scale_if_same_direction(reported, _projection(grads, directions))
        if scale is not None:
            return [scale * g for g in grads]
    return None


@dataclass(frozen=True)
class RunSettings:
    """How the training run is made and checked."""
    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    hidden: int = 128
    batch_norm: bool = True    # batch statistics only: learns fast and stays a function of the weights
    segment: int = 10          # steps between checkpoints: a replay drifts from the student's run by rounding
    #                            (25 steps: past MATCH for a correct answer; 10 steps: at most 2e-5, CALIBRATION.md)
    checked_segments: int = 6  # segments replayed, the last one always among them
    seed: int = 0


def verified_training_run(train_step, opt, images, labels, **settings):
    """Train the reference networks with `train_step`; the final generator, after verifying the run.

    `settings` are RunSettings' fields (steps is required). TestFailed when train_step
    raises, or when a checked segment is not a chain of reference updates (the message
    says which step and how).
    """
    run = RunSettings(**settings)
    setup = Setup(latent_dim=opt.latent_dim, n_classes=opt.n_classes, label_dim=getattr(opt, "label_dim", 50),
                  hidden=run.hidden, batch_norm=run.batch_norm, model_seed=run.seed, rng_seed=run.seed, lr=run.lr,
                  betas=(opt.b1, opt.b2))
    probe_seed = secrets.randbelow(2**31)
    with probe_session(train_step) as call:
        report = call("training_run", setup=setup.wire(), images=images.cpu(), labels=labels.cpu(), steps=run.steps,
                      batch_size=run.batch_size, segment=run.segment, probe_seed=probe_seed, device=str(device))
        if "error" in report:
            fail(code_error(report["error"], f"train_step, at step {report.get('failed_step', '?')} of a training run"),
                 report)
        return _verify(call, report, setup, run, images, labels, probe_seed)


def _verify(call, report, setup, run, images, labels, probe_seed):
    """Replay the chosen segments; the final generator when they all check out."""
    G, D = reference_models(setup.latent_dim, setup.n_classes, setup.label_dim, run.hidden, seed=run.seed,
                            batch_norm=run.batch_norm)
    names_g, names_d = [n for n, _ in G.named_parameters()], [n for n, _ in D.named_parameters()]
    n_segments = -(-run.steps // run.segment)
    if len(report["hashes"]) - 1 != n_segments or len(report["projections"]) != run.steps:
        fail(f"The training run reported {len(report['hashes']) - 1} segments and {len(report['projections'])} steps, "
             f"expected {n_segments} and {run.steps}.")
    directions = {"G": torch.randn(4, sum(p.numel() for p in G.parameters()), dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(probe_seed)),
                  "D": torch.randn(4, sum(p.numel() for p in D.parameters()), dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(probe_seed + 1))}
    chosen = {n_segments - 1} | {secrets.randbelow(n_segments) for _ in range(run.checked_segments - 1)}
    batches = batch_order(len(labels), run.batch_size, run.steps, run.seed)
    final_state = None
    for index in sorted(chosen):
        part = call("training_segment", handle=report["handle"], index=index, segment=run.segment)
        for key, which in (("start", index), ("end", index + 1)):
            if hashlib.sha256(state_bytes(part[key])).hexdigest() != report["hashes"][which]:
                fail(f"Checkpoint {which} of the training run changed after it was reported.")
        g, d, adam_g, adam_d = _split_state(part["start"], len(names_g), len(names_d))
        state = (dict(zip(names_g, g)), dict(zip(names_d, d)))
        replicas = {"G": AdamReplica(state[0], run.lr, setup.betas, adam_g),
                    "D": AdamReplica(state[1], run.lr, setup.betas, adam_d)}
        first = index * run.segment
        for offset, events in enumerate(part["draws"]):
            step = first + offset
            idx = batches[step]
            state, problem = _replay_step(G, D, state, events, report["projections"][step], images[idx].cpu(),
                                          labels[idx].cpu(), directions, replicas)
            if problem:
                fail(f"Step {step + 1} of the training run is not a correct training step: {problem}. "
                     f"The tests of train_step above name the likely cause.")
        g_end, d_end, _, _ = _split_state(part["end"], len(names_g), len(names_d))
        for name, replayed, reported in (("generator", state[0], g_end), ("discriminator", state[1], d_end)):
            difference = float(torch.cat([(r.double() - p.double()).reshape(-1)
                                          for r, p in zip(reported, replayed.values())]).norm()
                               / torch.cat([p.double().reshape(-1) for p in replayed.values()]).norm())
            if difference > END_STATE:
                fail(f"The {name}'s weights at step {first + len(part['draws'])} of the training run are not what "
                     f"the reference updates from its draws give (relative difference {difference:.2g}).")
        if index == n_segments - 1:
            final_state = g_end
    if len(report["final_G"]) != len(final_state) or any(not torch.equal(a, b) for a, b in zip(report["final_G"], final_state)):
        fail("The training run's final generator is not its last checkpoint.")
    G.load_state_dict(dict(zip(names_g, final_state)))
    return G.eval()
