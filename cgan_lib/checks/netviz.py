"""Checks of the Network Visualization lab, judged from what the student's functions did to instrumented models.

    check_saliency_maps(compute_saliency_maps)                     the absolute gradient of the correct score, max over channels
    check_fooling_image(make_fooling_image)                        classified as the target, a small change, a step budget
    check_class_visualization(class_visualization)                 the target's score raised from noise, by gradient ascent
    check_interpolation(confidence_along_interpolation)            the generator's images along a line in latent space, and
                                                                   the classifier's probability of the class for each

Each function runs in the probe (cgan_lib.checks.netviz_probe) on models built there; the
judge here compares what came back with what correct code computes on its own copies of
the models (cgan_lib.checks.netviz_models). Any correct way of writing the code passes:
.backward() or torch.autograd.grad, gather or indexing, any step rule that gets there. Every
function must leave the models as it found them: in eval mode, weights unchanged and
without gradients. Across the steps of a loop, the image's gradient must be reset: the probe
sees a gradient added to an earlier one. The run_* and expect_* building blocks serve the
hidden tests too.
"""
import functools

import torch
import torch.nn.functional as F

from cgan_lib.checks import netviz_probe  # noqa: F401  (registers the probe op netviz_run)
from cgan_lib.checks.core import code_error, fail, ok, probe
from cgan_lib.checks.netviz_models import build, interpolation_of, logits_of, saliency_of, score_gradients
from cgan_lib.data import CLASS_NAMES
from cgan_lib.netviz import sample_images

SALIENCY_TOLERANCE = 1e-3   # largest difference from the reference, relative to its largest value
FOOLING_BUDGET = 100        # gradient steps make_fooling_image may take (its max_steps default)
FOOLING_MAX_L2 = 8.0        # largest accepted change ||X_fooling - X||_2 (correct variants: at most 3.5 on the test pairs)
FOOLING_PAIRS = ((0, 5), (6, 1))  # (index into sample_images(), target class) of the visible test
VISUALIZATION_MIN_PROBABILITY = 0.5   # softmax probability of the target the class visualisation must reach
VISUALIZATION_MIN_RISE = 2.0          # ... and how much its score must rise above the starting noise's
PROBABILITY_TOLERANCE = 1e-4
MODEL = {"model": "classifier"}


@functools.lru_cache(maxsize=None)
def images(per_class=1, seed=0):
    """Real test images, `per_class` of every class in class order: (X, y)."""
    return sample_images(per_class, seed=seed)


@functools.lru_cache(maxsize=None)
def judge_model(kind):
    """The judge's own copy of a model (never handed to student code)."""
    return build(kind)


def name(label):
    return f"{int(label)} ({CLASS_NAMES[int(label)]})"


# --------------------------------------------------------------------------- running and common expectations
def run_calls(function, what, calls, seed=0):
    """The probe's report of each call; TestFailed when the function raised."""
    run = probe("netviz_run", function, calls=calls, seed=seed)
    for result in run["results"]:
        if "error" in result:
            fail(code_error(result["error"], what), run)
    return run["results"]


def tensor_value(result, what, shape):
    """The tensor a call returned, of `shape`, finite (TestFailed otherwise)."""
    value = result.get("value")
    if not torch.is_tensor(value):
        kind = (value.get("object") or value.get("sequence")) if isinstance(value, dict) else type(value).__name__
        fail(f"{what} must return a tensor; it returned {kind}. Keep the template's return line.")
    if tuple(value.shape) != tuple(shape):
        fail(f"{what} returned a tensor of shape {tuple(value.shape)}, expected {tuple(shape)}.")
    if not value.is_floating_point() or not torch.isfinite(value).all():
        fail(f"{what} returned a {value.dtype} tensor with {'NaN or infinite values' if value.is_floating_point() else 'integers'}; "
             f"expected finite floats.")
    return value.float()


def expect_model_untouched(report, what, model_name="model"):
    """The model ran, always in eval mode, and is left as it came: eval mode, same weights, no gradients."""
    if report["forwards"] == 0:
        fail(f"{what} never ran the `{model_name}` it was given: use that argument (not a model of the notebook).")
    if report["train_forwards"]:
        fail(f"{what} ran `{model_name}` in training mode ({report['train_forwards']} of its {report['forwards']} runs): "
             f"do not call {model_name}.train(). It comes in eval mode, in which BatchNorm uses its stored statistics "
             f"and Dropout is off; in training mode the scores (and their gradients) depend on the whole batch.")
    if report["mode_after"] != "eval":
        fail(f"{what} left `{model_name}` in training mode: it came in eval mode; leave it so (or put it back "
             f"with {model_name}.eval()).")
    touched = report["requires_grad_changed"] or report["grads_left"]
    if touched:
        fail(f"{what} made the weights of `{model_name}` require or hold gradients ({', '.join(touched[:3])}): "
             f"take gradients with respect to the input images only, never the model's weights. Leave "
             f"requires_grad of the weights alone.")
    if report["changed"]:
        fail(f"{what} changed the weights or statistics of `{model_name}` ({', '.join(report['changed'][:3])}): "
             f"it must leave the model as it found it.")


def expect_no_leak(report, what, image="X_fooling"):
    if report["leaks"]:
        fail(f"{what}: in {report['leaks']} of its {report['gradient_steps']} gradient steps the new gradient was "
             f"added to the previous step's: {image}.grad was not reset between steps, so each step also "
             f"replays all earlier gradients. After each update set {image}.grad.zero_() (or {image}.grad = None), or "
             f"take the gradient with torch.autograd.grad. model.zero_grad() does not reset the image's gradient.")


def expect_argument_unchanged(result, what, index=0, argument="X"):
    if index in result["changed_arguments"]:
        fail(f"{what} changed the `{argument}` it was given, in place: work on a copy ({argument}.clone()).")


# --------------------------------------------------------------------------- saliency maps
def run_saliency(compute_saliency_maps, X, y, kind="classifier"):
    """(saliency (N, H, W), the model's report) of one call."""
    what = f"compute_saliency_maps(X, y, model) on {len(X)} image(s)"
    result = run_calls(compute_saliency_maps, what, [{"args": [X, y, {"model": kind}]}])[0]
    expected = (len(X), *X.shape[2:])
    value = result.get("value")
    if torch.is_tensor(value) and tuple(value.shape) != expected:
        _explain_saliency_shape(tuple(value.shape), expected, judge_model(kind), what)
    saliency = tensor_value(result, what, expected)
    report = result["models"][0]
    expect_model_untouched(report, what)
    expect_argument_unchanged(result, what)
    return saliency, report


def _explain_saliency_shape(shape, expected, model, what):
    if shape == (expected[0], 1, *expected[1:]) or (len(shape) == 4 and shape[0] == expected[0]):
        fail(f"{what} returned shape {shape}, expected {expected}: one value per pixel. Take the maximum of the "
             f"absolute gradient over the channel dimension (dim=1).")
    for weight, parameter in model.named_parameters():
        if shape in (tuple(parameter.shape), tuple(parameter.shape[:1] + parameter.shape[2:])):
            fail(f"{what} returned shape {shape}, the shape of the model's weight `{weight}`: that is a gradient with "
                 f"respect to the weights. Saliency is the gradient with respect to the input images: make X "
                 f"require gradients and read X.grad, shape {(expected[0], 'C', *expected[1:])}.")
    fail(f"{what} returned shape {shape}, expected {expected}: one map per image, one value per pixel.")


MISTAKES = (  # (objective, reduce, what the code does instead)
    ("predicted", "max", "the gradient of the *predicted* class's score; take the score of the correct class y[i]"),
    ("columns", "max", "the gradient of scores[:, y].sum(), which adds the scores of every class in y for every "
                       "image; pick one score per image: scores.gather(1, y.view(-1, 1)) or scores[torch.arange(N), y]"),
    ("all", "max", "the gradient of the sum of all 10 scores; take only the correct class's score"),
    ("probability", "max", "the gradient of the softmax probability; take the raw score (the logit) of the correct class"),
    ("log_probability", "max", "the gradient of the log-probability (a cross-entropy loss); take the raw score "
                               "(the logit) of the correct class"),
    ("score", "sum", "the sum over channels; take the maximum over channels (amax(dim=1) or max(dim=1).values)"),
    ("score", "mean", "the mean over channels; take the maximum over channels (amax(dim=1) or max(dim=1).values)"),
    ("score", "first", "channel 0 only; take the maximum over all channels (amax(dim=1))"),
    ("score", "max_signed", "the maximum over channels of the signed gradient, then its absolute value; take the "
                            "absolute value first, then the maximum over channels"),
)


def expect_saliency(saliency, X, y, kind, what):
    """Non-negative, and equal to |d score_y / d X| maximised over channels (the mistake named when it is not)."""
    model = judge_model(kind)
    if saliency.min() < 0:
        fail(f"{what}: the saliency has negative values (down to {saliency.min():.3g}). Saliency is the *absolute* "
             f"value of the gradient: call .abs() on it before the maximum over channels.")
    reference = saliency_of(model, X, y)
    if _close(saliency, reference):
        return
    for objective, reduce, explanation in MISTAKES:
        mistake = saliency_of(model, X, y, objective, reduce)
        # channel reductions are told apart by their values, other scores also up to a scale (1/N of a mean loss)
        same = _close if objective == "score" else _proportional
        if not same(mistake, reference) and same(saliency, mistake):
            fail(f"{what}: your saliency is {explanation}.")
    scale = (saliency.flatten(1) * reference.flatten(1)).sum(1) / reference.flatten(1).square().sum(1).clamp(min=1e-30)
    if _close(saliency, reference * scale.view(-1, 1, 1)):
        fail(f"{what}: your saliency is proportional to the expected one but scaled (by {scale.min():.3g} to "
             f"{scale.max():.3g}). Return the absolute gradient itself: plots rescale it for display.")
    error = (saliency - reference).abs().max() / reference.abs().max()
    fail(f"{what}: the saliency differs from |d scores[i, y[i]] / d X[i]| (maximised over channels) by up to "
         f"{error:.1%} of its largest value. Compute the scores of X with the model, pick each image's correct-class "
         f"score, backpropagate their sum, and take X.grad.abs().amax(dim=1).")


def _close(a, b):
    return a.shape == b.shape and bool((a - b).abs().max() <= SALIENCY_TOLERANCE * b.abs().max().clamp(min=1e-12))


def _proportional(a, b):
    """a = k * b for one k > 0 (within the tolerance)."""
    k = float((a * b).sum() / (b * b).sum().clamp(min=1e-30))
    return k > 0 and _close(a, k * b)


def check_saliency_maps(compute_saliency_maps):
    """The visible tests: one image of every class, with its true label."""
    X, y = images()
    what = "compute_saliency_maps(X, y, model) on one image of every class"
    saliency, _ = run_saliency(compute_saliency_maps, X, y)
    expect_saliency(saliency, X, y, "classifier", what)
    ok("compute_saliency_maps returns |gradient of the correct score| for each pixel, the model left as it was.")


# --------------------------------------------------------------------------- fooling images
def run_fooling(make_fooling_image, X, target, **kwargs):
    """(X_fooling, the model's report) of one call on one image X (1, C, H, W)."""
    what = f"make_fooling_image(X, {target}, model{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    result = run_calls(make_fooling_image, what, [{"args": [X, target, MODEL], "kwargs": kwargs}])[0]
    fooling = tensor_value(result, what, X.shape)
    report = result["models"][0]
    expect_argument_unchanged(result, what)
    expect_model_untouched(report, what)
    expect_no_leak(report, what)
    return fooling, report


def expect_fooled(fooling, X, target, report, what, budget=FOOLING_BUDGET, max_l2=FOOLING_MAX_L2):
    """Classified as `target`, reached within `budget` gradient steps, stopped there, with a small change; (L2, Linf)."""
    model = judge_model("classifier")
    steps = report["gradient_steps"]
    if steps > budget:
        fail(f"{what} took {steps} gradient steps; the budget is max_steps={budget}.")
    predicted = int(logits_of(model, fooling).argmax(1))
    if predicted != target:
        _explain_not_fooled(X, target, predicted, report, what, model)
    reached = [i for i, x in enumerate(report["inputs"]) if int(logits_of(model, x).argmax(1)) == target]
    if reached:  # the model already said target_y at run reached[0]: at most one more gradient after it
        late = _gradients_after(report, reached[0])
        if late > 1:
            fail(f"{what}: the model predicted the target already at its run {reached[0] + 1}, but your loop went "
                 f"on for {late} more gradient steps. Stop as soon as the model predicts target_y (break).")
    change = (fooling - X).flatten()
    l2, linf = float(change.norm()), float(change.abs().max())
    if l2 > max_l2:
        fail(f"{what}: the fooling image differs from X by ||X_fooling - X||_2 = {l2:.2f} (largest pixel change "
             f"{linf:.2f}); it must stay close to X (at most {max_l2}). Take small steps (learning_rate times the "
             f"normalised gradient) and stop as soon as the model predicts target_y.")
    return l2, linf


def _gradients_after(report, run_index):
    """Gradients taken with respect to the image after the model's run number `run_index` (0-based)."""
    runs = 0
    for position, event in enumerate(report["events"]):
        runs += event == "F"
        if runs > run_index:
            return report["events"].count("G", position)
    return 0


def _explain_not_fooled(X, target, predicted, report, what, model):
    inputs = report["inputs"]
    if not inputs or report["gradient_steps"] == 0:
        fail(f"{what}: the model predicts class {name(predicted)} for the image you returned, not {name(target)}, "
             f"and no gradient was taken with respect to the image: compute the target's score and its gradient.")
    first, last = logits_of(model, inputs[0])[0], logits_of(model, inputs[-1])[0]
    followed = followed_gradient(model, inputs)
    if followed is not None:
        label, cosine = followed
        if label == target and cosine < 0:
            fail(f"{what}: your steps go against the gradient of the target's score, and the score of "
                 f"{name(target)} went down (from {first[target]:.2f} to {last[target]:.2f}): that is gradient "
                 f"descent. Gradient ascent adds the gradient: X_fooling += learning_rate * g / g.norm().")
        if label != target and cosine > 0:
            fail(f"{what}: your steps follow the gradient of the score of class {name(label)}, not of the target "
                 f"{name(target)} (whose score went from {first[target]:.2f} to {last[target]:.2f}): take the "
                 f"gradient of scores[0, target_y].")
    fail(f"{what}: after {report['gradient_steps']} gradient steps the model still predicts class {name(predicted)}, "
         f"not {name(target)} (target score {first[target]:.2f} -> {last[target]:.2f}). Keep stepping until the model "
         f"predicts target_y (at most max_steps steps), with steps of learning_rate * g / g.norm().")


def followed_gradient(model, inputs, steps=5, least=0.3):
    """(class, mean cosine): the class score whose gradient the first `steps` changes between `inputs` follow most
    closely, up to sign (ascent: cosine > 0); None when no class's gradient explains them (|cosine| < `least`)."""
    cosines = []
    for before, after in zip(inputs, inputs[1:]):
        change = (after - before).flatten()
        if float(change.norm()) == 0:
            continue
        cosines.append(F.cosine_similarity(score_gradients(model, before).flatten(1), change.view(1, -1), dim=1))
        if len(cosines) == steps:
            break
    if not cosines:
        return None
    mean = torch.stack(cosines).mean(0)
    label = int(mean.abs().argmax())
    return (label, float(mean[label])) if abs(float(mean[label])) >= least else None


def check_fooling_image(make_fooling_image, pairs=FOOLING_PAIRS):
    """The visible tests: two real images, each turned into another class."""
    X_all, y_all = images()
    lines = []
    for index, target in pairs:
        X = X_all[index:index + 1]
        what = f"make_fooling_image on a {CLASS_NAMES[int(y_all[index])]} with target_y={name(target)}"
        fooling, report = run_fooling(make_fooling_image, X, target)
        l2, linf = expect_fooled(fooling, X, target, report, what)
        lines.append(f"{CLASS_NAMES[int(y_all[index])]} -> {CLASS_NAMES[target]} in {report['gradient_steps']} "
                     f"steps, ||change||_2 = {l2:.2f}, largest pixel change {linf:.2f}")
    ok("make_fooling_image fools the model with small changes: " + "; ".join(lines) + ".")


# --------------------------------------------------------------------------- class visualisation
def run_visualization(class_visualization, target, seed=0, **kwargs):
    """(image (1, 1, 28, 28), the model's report) of one call."""
    what = f"class_visualization({target}, model{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    result = run_calls(class_visualization, what, [{"args": [target, MODEL], "kwargs": kwargs}], seed=seed)[0]
    image = tensor_value(result, what, (1, 1, 28, 28))
    report = result["models"][0]
    expect_model_untouched(report, what)
    expect_no_leak(report, what, image="img")
    return image, report


def expect_visualized(image, target, report, what, min_probability=VISUALIZATION_MIN_PROBABILITY,
                      min_rise=VISUALIZATION_MIN_RISE):
    """The target's score rose from the first image the model saw to the result, to `min_probability`; (start, end, p)."""
    model = judge_model("classifier")
    if not report["inputs"] or report["gradient_steps"] == 0:
        fail(f"{what}: no gradient was taken with respect to the image: compute the target's score of img and "
             f"backpropagate it.")
    first, final = logits_of(model, report["inputs"][0])[0], logits_of(model, image)[0]
    probability = float(F.softmax(final, 0)[target])
    rise = final - first
    if rise[target] < 0 and int(rise.argmin()) == target:
        fail(f"{what}: the score of class {name(target)} went *down* (from {first[target]:.2f} for the starting "
             f"noise to {final[target]:.2f}): that is gradient descent. Gradient ascent adds the gradient of the "
             f"objective: img += learning_rate * g / g.norm().")
    climber = int(rise.argmax())
    if climber != target and probability < min_probability:
        fail(f"{what}: the score that rose most is that of class {name(climber)} (by {rise[climber]:.2f}), not "
             f"{name(target)}: take the gradient of scores[0, target_y].")
    if probability < min_probability or rise[target] < min_rise:
        fail(f"{what}: the score of class {name(target)} rose from {first[target]:.2f} to {final[target]:.2f}, and the "
             f"model gives the image a probability of {probability:.2f} for it; expected a rise of at least "
             f"{min_rise} and a probability of at least {min_probability}. Check the objective (the target's score "
             f"minus l2_reg * ||img||^2) and the step (learning_rate * g / g.norm()).")
    return float(first[target]), float(final[target]), probability


def check_class_visualization(class_visualization, target=0):
    """The visible test: one class, the default settings."""
    what = f"class_visualization({name(target)}, model)"
    image, report = run_visualization(class_visualization, target)
    start, end, probability = expect_visualized(image, target, report, what)
    ok(f"class_visualization raised the score of {CLASS_NAMES[target]} from {start:.2f} to {end:.2f} "
       f"(probability {probability:.3f}) in {report['gradient_steps']} steps.")


# --------------------------------------------------------------------------- latent interpolation
def run_interpolation(function, z0, z1, label, steps):
    """(images, probabilities, the generator's report, the classifier's report) of one call."""
    what = f"confidence_along_interpolation(generator, model, z0, z1, {label}, steps={steps})"
    calls = [{"args": [{"model": "generator"}, MODEL, z0, z1, label], "kwargs": {"steps": steps}}]
    result = run_calls(function, what, calls)[0]
    value = result.get("value")
    items = value.get("items") if isinstance(value, dict) else None
    if not items or len(items) != 2 or not all(torch.is_tensor(v) for v in items):
        kind = (value.get("repr") or value.get("sequence")) if isinstance(value, dict) else type(value).__name__
        fail(f"{what} must return two tensors (images, probabilities); it returned {kind}. Keep the template's "
             f"return line.")
    generator, classifier = result["models"]
    images_out = tensor_value({"value": items[0]}, what + " (images)", (steps, 1, 28, 28))
    probabilities = tensor_value({"value": items[1]}, what + " (probabilities)", (steps,))
    expect_model_untouched(generator, what, "generator")
    expect_model_untouched(classifier, what, "model")
    if any(result["value_requires_grad"]):
        fail(f"{what} returned tensors that require gradients: nothing here needs them. Run both networks under "
             f"torch.no_grad(), so that no graph is built and no gradient can leak into the networks.")
    expect_argument_unchanged(result, what, 2, "z0")
    expect_argument_unchanged(result, what, 3, "z1")
    return images_out, probabilities, generator, classifier


def expect_interpolation(images_out, probabilities, generator_report, z0, z1, label, steps, what):
    """The images of the generator along (1 - t) z0 + t z1, t = 0, 1/(steps-1), ..., 1, and their probability of `label`."""
    expected_images, expected = interpolation_of(judge_model("generator"), judge_model("classifier"), z0, z1, label, steps)
    noise = torch.cat(generator_report["noise"]) if generator_report["noise"] else None
    t = torch.linspace(0, 1, steps).view(-1, 1)
    path = (1 - t) * z0.view(1, -1) + t * z1.view(1, -1)
    if noise is not None and noise.shape == path.shape and not torch.allclose(noise, path, atol=1e-5):
        fail(f"{what}: the latent vectors given to the generator are not (1 - t) * z0 + t * z1 for t = 0, "
             f"1/{steps - 1}, ..., 1: the first must be z0, the last z1, evenly spaced (torch.linspace(0, 1, steps)).")
    labels = [lab for lab in generator_report["labels"] if lab is not None]
    if labels and not all(bool((lab == label).all()) for lab in labels):
        fail(f"{what}: the generator was asked for other classes than label={label}: pass a tensor of `label`s, "
             f"one per latent vector (torch.full((steps,), label)).")
    if not torch.allclose(images_out, expected_images, atol=1e-4):
        fail(f"{what}: the images are not the generator's images of the interpolated latent vectors "
             f"generator(z_t, labels) in eval mode.")
    if torch.allclose(probabilities, expected, atol=PROBABILITY_TOLERANCE):
        return
    logits = logits_of(judge_model("classifier"), expected_images)
    if torch.allclose(probabilities, logits[:, label], atol=PROBABILITY_TOLERANCE):
        fail(f"{what}: the probabilities are the raw scores (logits) of class {label}; apply F.softmax(scores, dim=1) "
             f"first, then take column {label}.")
    if torch.allclose(probabilities, F.softmax(logits, 1).amax(1), atol=PROBABILITY_TOLERANCE):
        fail(f"{what}: the probabilities are those of the *predicted* class of each image; take the probability of "
             f"`label`, column {label} of the softmax.")
    fail(f"{what}: the probabilities differ from softmax(model(images), dim=1)[:, label] by up to "
         f"{(probabilities - expected).abs().max():.3g}.")


def latent_pair(seed=0, latent_dim=100):
    draw = torch.Generator().manual_seed(seed)
    return torch.randn(latent_dim, generator=draw), torch.randn(latent_dim, generator=draw)


def check_interpolation(confidence_along_interpolation, label=8, steps=9):
    """The visible test: one pair of latent vectors, one class."""
    z0, z1 = latent_pair()
    what = f"confidence_along_interpolation(generator, model, z0, z1, label={name(label)}, steps={steps})"
    images_out, probabilities, generator, _ = run_interpolation(confidence_along_interpolation, z0, z1, label, steps)
    expect_interpolation(images_out, probabilities, generator, z0, z1, label, steps, what)
    ok(f"confidence_along_interpolation: {steps} images from z0 to z1, probabilities of {CLASS_NAMES[label]} "
       f"{probabilities.min():.2f} to {probabilities.max():.2f}, both networks left as they were.")
