"""Checks of the Generator and the Discriminator, judged from what they return.

    check_generator(Generator, opt)          shape, dtype, range, determinism in eval(), noise and labels used
    check_discriminator(Discriminator, opt)  shape (N, 1), labels and image used

The building blocks (run_model, the step constructors, expect_images, expect_scores)
serve the hidden tests too.
"""
import torch

from cgan_lib.checks.core import code_error, fail, ok, probe
from cgan_lib.device import device

EVAL, TRAIN = {"do": "eval"}, {"do": "train"}
ATOL = 1e-6  # outputs closer than this count as the same image or score


def call(*args, input_grad=()):
    """A script step: call the model with `args` (and report d sum(output) / d args[i] for i in input_grad)."""
    return {"do": "call", "args": list(args), "input_grad": list(input_grad)}


def fit(target, opt, steps=40, lr=0.05, batch_size=32, seed=0):
    """A script step: Adam on mean((G(noise, labels) - target)^2) for `steps` steps, in training mode."""
    return {"do": "fit", "target": float(target), "steps": steps, "lr": lr, "batch_size": batch_size,
            "latent_dim": opt.latent_dim, "n_classes": opt.n_classes, "seed": seed}


def run_model(definition, what, script, seed=0):
    """Build `definition()` and run `script` on it; the list of step results (TestFailed on any error)."""
    run = probe("module_run", definition, seed=seed, script=script, device=str(device))
    if "build_error" in run:
        fail(code_error(run["build_error"], f"{what}()"), run)
    results = run["results"]
    for index, result in enumerate(results):
        if "error" in result:
            step = script[index]
            doing = f"{what}(...) on a batch of {len(step['args'][0])}" if step["do"] == "call" else f"{what} ({step['do']})"
            fail(code_error(result["error"], doing), run)
    if not run.get("is_module", True):
        fail(f"{what}() must build an nn.Module (class {what}(nn.Module)); it built something else.")
    return results


def _tensor_output(result, what, n):
    out = result["output"]
    if not torch.is_tensor(out):
        kind = out.get("object") or out.get("sequence") if isinstance(out, dict) else type(out).__name__
        fail(f"{what}(...) must return a tensor; for a batch of {n} it returned a {kind}. "
             f"Return the result of the network (a single tensor).")
    return out


def expect_images(result, n, what="Generator", check_range=True):
    """The output of a generator call on `n` inputs: (n, 1, 28, 28) float32 (in [-1, 1] with check_range)."""
    out = _tensor_output(result, what, n)
    shape = tuple(out.shape)
    if shape == (n, 28, 28):
        fail(f"{what} output has shape {shape}, expected {(n, 1, 28, 28)}: the channel dimension is missing. "
             f"In {what}.forward, reshape with img.view(img.size(0), *img_shape).")
    if shape != (n, 1, 28, 28):
        fail(f"{what} output for {n} image(s) has shape {shape}, expected {(n, 1, 28, 28)} "
             f"(batch, channels, height, width).")
    if out.dtype != torch.float32:
        fail(f"{what} output has dtype {out.dtype}, expected torch.float32.")
    if not torch.isfinite(out).all():
        fail(f"{what} output contains NaN or infinite values.")
    if check_range and (out.min() < -1 or out.max() > 1):
        fail(f"{what} output has values in [{out.min():.3f}, {out.max():.3f}], expected inside [-1, 1] like "
             f"the real images: end self.model with nn.Tanh().")
    return out


def expect_scores(result, n, what="Discriminator"):
    """The output of a discriminator call on `n` images: (n, 1) float32."""
    out = _tensor_output(result, what, n)
    shape = tuple(out.shape)
    if shape in ((n,), ()):
        fail(f"{what} output for {n} image(s) has shape {shape}, expected {(n, 1)}. Did you call .squeeze()? "
             f"The targets valid/fake have shape (N, 1); MSELoss would broadcast (N,) against them. "
             f"Return the output of self.model unchanged.")
    if shape != (n, 1):
        fail(f"{what} output for {n} image(s) has shape {shape}, expected {(n, 1)}: one score per image.")
    if out.dtype != torch.float32:
        fail(f"{what} output has dtype {out.dtype}, expected torch.float32.")
    if not torch.isfinite(out).all():
        fail(f"{what} output contains NaN or infinite values.")
    return out


def same(a, b):
    return a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=ATOL)


def pairs_alike(outputs):
    """Index pairs (i, j), i > j, of rows of `outputs` that are the same."""
    flat = outputs.flatten(1)
    return [(i, j) for i in range(len(flat)) for j in range(i) if same(flat[i], flat[j])]


# --------------------------------------------------------------------------- Generator
def check_generator(Generator, opt, seed=0):
    """The visible Generator tests."""
    draw = torch.Generator().manual_seed(seed)
    z1, z5, z5_other = (torch.randn(n, opt.latent_dim, generator=draw) for n in (1, 5, 5))
    y1, y5 = torch.tensor([3]), torch.arange(5) % opt.n_classes
    z_each = torch.randn(1, opt.latent_dim, generator=draw).repeat(opt.n_classes, 1)
    results = run_model(Generator, "Generator", [EVAL, call(z1, y1), call(z5, y5), call(z5, y5), call(z5_other, y5),
                                                 call(z_each, torch.arange(opt.n_classes))], seed=seed)
    one, five, again, other, each = (expect_images(r, n) for r, n in zip(results[1:], (1, 5, 5, 5, opt.n_classes)))
    if not same(five, again):
        fail("In eval() mode the same noise and labels gave different images: the generator must be a function "
             "of the `noise` and `labels` it is given. Does forward() draw its own random numbers "
             "(torch.randn inside forward) instead of using `noise`?")
    if same(five, other):
        fail("Different noise with the same labels gave the same images: the generator ignores its noise. "
             "Concatenate `noise` with the label embedding in Generator.forward.")
    alike = pairs_alike(each)
    if alike:
        fail(f"The same noise with different labels gave the same image for the classes {alike[:5]}: the "
             f"generator ignores its labels. Concatenate self.label_embedding(labels) with the noise in "
             f"Generator.forward.")
    ok("All visible Generator tests passed.")


# --------------------------------------------------------------------------- Discriminator
def check_discriminator(Discriminator, opt, seed=0):
    """The visible Discriminator tests."""
    draw = torch.Generator().manual_seed(seed)
    x1, x5, x5_other = (torch.rand(n, 1, 28, 28, generator=draw) * 2 - 1 for n in (1, 5, 5))
    y1, y5 = torch.tensor([3]), torch.arange(5) % opt.n_classes
    x_each = (torch.rand(1, 1, 28, 28, generator=draw) * 2 - 1).repeat(opt.n_classes, 1, 1, 1)
    results = run_model(Discriminator, "Discriminator", [EVAL, call(x1, y1), call(x5, y5), call(x5_other, y5),
                                                         call(x_each, torch.arange(opt.n_classes))], seed=seed)
    one, five, other, each = (expect_scores(r, n) for r, n in zip(results[1:], (1, 5, 5, opt.n_classes)))
    if same(five, other):
        fail("Different images with the same labels got the same scores: the discriminator ignores the image. "
             "Flatten `img` and concatenate it with the label embedding in Discriminator.forward.")
    alike = pairs_alike(each)
    if alike:
        fail(f"The same image with different labels got the same score for the classes {alike[:5]}: the "
             f"discriminator ignores its labels. Concatenate self.label_embedding(labels) with the flattened "
             f"image in Discriminator.forward.")
    ok("All visible Discriminator tests passed.")
