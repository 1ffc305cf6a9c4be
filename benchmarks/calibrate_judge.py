"""How close correct train_steps come to the reference update, and how far bugs are: the judge's tolerances.

    .venv/bin/python benchmarks/calibrate_judge.py [--seeds 0,1,2,3,4]

For every train_step variant of autograder/testdata/variants.py (correct and buggy) and
every seed, the visible check's setup (3 calls, batch 64, planted stale gradients) is
run in-process, and for each call the relative difference between the gradients each
optimizer step applied and the closest reference update from the same draws is printed
(cgan_lib.checks.train_step.compare, after fitting the loss scale). It also checks that
Adam makes summed and averaged discriminator losses equivalent, as the judge assumes.
Results: autograder/CALIBRATION.md.
"""
import argparse
import contextlib
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.notebook_code import cell_sources, load_cells  # noqa: E402
from autograder.testdata.variants import BUGS, CORRECT, sources  # noqa: E402
from cgan_lib.checks import train_step as judge  # noqa: E402
from cgan_lib.checks.reference import AdamReplica, reference_models  # noqa: E402


def differences(train_step, opt, seed):
    """[(G difference, D difference, G scale, D scale)] per call: to the closest reference from the call's draws."""
    setup = judge.make_setup(opt, (64, 64, 64), seed)
    report = judge.run_train_step(train_step, setup)
    G, D = reference_models(setup.latent_dim, setup.n_classes, setup.label_dim, setup.hidden, seed=setup.model_seed)
    state = tuple({k: v.detach().clone() for k, v in m.named_parameters()} for m in (G, D))
    replicas = {"G": AdamReplica(state[0], setup.lr, setup.betas), "D": AdamReplica(state[1], setup.lr, setup.betas)}
    rows = []
    for index, (call, batch) in enumerate(zip(report["calls"], setup.batches)):
        if "error" in call:
            rows.append(("error", "error", "", ""))
            break
        try:
            view = judge._view(index, call, batch, state, replicas)
        except AssertionError:
            rows.append(("steps", "steps", "", ""))
            break
        student_g = judge._grads(view.g_step, view.g_before)
        student_d = judge._grads(view.d_step, view.d_before)
        pre = [i for i, (pos, _, _) in enumerate(view.g_calls) if pos < view.g_step["pos"]] or [0]
        refs = [judge._reference(view, G, D, a, b) for a in pre for b in range(len(view.g_calls))]
        g = min((judge.compare(student_g, r.g) for r in refs), key=lambda c: c[1])
        d = min((judge.compare(student_d, r.d) for r in refs), key=lambda c: c[1])
        rows.append((g[1], d[1], g[0], d[0]))
        state = (view.g_after, view.d_after)
    return rows


def adam_makes_the_scale_irrelevant(opt, steps=50):
    """Relative difference of the weights after `steps` Adam steps on d_loss and on 2 * d_loss."""
    torch.manual_seed(0)
    results = []
    for scale in (1.0, 2.0):
        _, D = reference_models(seed=0)
        optimizer = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2))
        generator = torch.Generator().manual_seed(1)
        for _ in range(steps):
            x = torch.rand(64, 1, 28, 28, generator=generator) * 2 - 1
            y = torch.randint(0, 10, (64,), generator=generator)
            optimizer.zero_grad()
            (scale * ((D(x, y) - 1) ** 2).mean()).backward()
            optimizer.step()
        results.append(torch.cat([p.detach().reshape(-1) for p in D.parameters()]))
    return float((results[0] - results[1]).norm() / results[0].norm())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):
        base = load_cells(["imports", "settings", "device"])
    opt = base["opt"]
    variants = {"solution": ({}, "correct")}
    variants.update({name: (edits, "correct") for name, edits in CORRECT.items() if "train_step" in edits})
    variants.update({name: (edits, "bug") for name, (edits, test, _) in BUGS.items()
                     if "train_step" in edits and test == "test_train_step"})
    print(f"{'kind':7} {'G diff':>9} {'D diff':>9} {'G scale':>11} {'D scale':>11}  variant   (largest difference over calls and seeds)")
    worst_correct, best_bug = [0.0, 0.0], []
    for name, (edits, kind) in variants.items():
        namespace = dict(base)
        with contextlib.redirect_stdout(io.StringIO()):
            load_cells(["train_step"], namespace=namespace, replace=sources(edits, cell_sources()))
        rows = [row for seed in seeds for row in differences(namespace["train_step"], opt, seed)]
        numeric = [r for r in rows if not isinstance(r[0], str)]
        if not numeric:
            print(f"{kind:7} {rows[0][0] + ' (caught before comparing updates)':>43}  {name}")
            continue
        g, d = max(r[0] for r in numeric), max(r[1] for r in numeric)

        def spread(values):
            return f"{min(values):.2f}..{max(values):.2f}" if max(values) - min(values) > 0.005 else f"{values[0]:.2f}"
        print(f"{kind:7} {g:>9.1e} {d:>9.1e} {spread([r[2] for r in numeric]):>11} {spread([r[3] for r in numeric]):>11}"
              f"  {name}")
        if kind == "correct":
            worst_correct = [max(worst_correct[0], g), max(worst_correct[1], d)]
        elif max(g, d) > 0:
            best_bug.append(max(g, d))
    print(f"\ncorrect answers: largest difference G {worst_correct[0]:.2e}, D {worst_correct[1]:.2e}; "
          f"bugs seen in the update itself: smallest difference {min(best_bug):.2e}; threshold MATCH = {judge.MATCH:g} "
          f"(the other bugs are caught by their draws, step counts or return values)")
    print(f"Adam, 50 steps on d_loss vs 2 * d_loss: weights differ by {adam_makes_the_scale_irrelevant(opt):.2e} (relative)")


if __name__ == "__main__":
    main()
