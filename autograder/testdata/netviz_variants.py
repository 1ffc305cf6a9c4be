"""Correct and buggy answers to the Network Visualization assignment's graded cells, written the ways students write them.

Each variant maps a grade_id to a list of edits of the solution's source of that cell: (old text,
new text), or (SOLUTION, code) for new code between the cell's ### BEGIN SOLUTION / ### END SOLUTION
(the code is written unindented here and indented like the markers). CORRECT variants must pass
every test cell; each BUG must fail the test cell it names, with a message containing the phrase
it names. tests/test_netviz.py proves both; autograder/testdata/netviz_class.py builds submissions
from them.
"""
import textwrap

from autograder.testdata.variants import apply as apply_edits

SOLUTION = "the solution region"  # an edit (SOLUTION, code): the code between the BEGIN/END SOLUTION markers
BEGIN, END = "### BEGIN SOLUTION\n", "### END SOLUTION"


def region(grade_id, code):
    return {grade_id: [(SOLUTION, code)]}


# --------------------------------------------------------------------------- compute_saliency_maps
CORRECT_SALIENCY = {
    "saliency: torch.autograd.grad, indexing with arange, max(dim)[0]": '''
X = X.clone().requires_grad_(True)
scores = model(X)
picked = scores[torch.arange(len(y)), y]
grad, = torch.autograd.grad(picked.sum(), X)
saliency = grad.abs().max(dim=1)[0]
''',
    "saliency: CS231n style, X.requires_grad_() in place, backward(ones), .data": '''
model.eval()
X.requires_grad_()
scores = model(X).gather(1, y.view(-1, 1)).squeeze()
scores.backward(torch.ones(scores.shape))
saliency, _ = torch.max(X.grad.data.abs(), dim=1)
''',
    "saliency: one image at a time": '''
maps = []
for image, label in zip(X, y):
    image = image.unsqueeze(0).clone().requires_grad_()
    score = model(image)[0, label]
    score.backward()
    maps.append(image.grad[0].abs().amax(dim=0))
saliency = torch.stack(maps)
''',
    "saliency: a one-hot mask, detach().requires_grad_(), values of max": '''
inputs = X.detach().requires_grad_()
scores = model(inputs)
mask = F.one_hot(y, num_classes=scores.shape[1]).to(scores.dtype)
(scores * mask).sum().backward()
saliency = inputs.grad.abs().max(dim=1).values
''',
}

BUGGY_SALIENCY = {  # name: (code, the test cell that must fail, a phrase of its message)
    "saliency: signed gradient (no abs)": ('''
X = X.clone().requires_grad_()
scores = model(X)
scores.gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.amax(dim=1)
''', "test_saliency", "*absolute*"),
    "saliency: gradient with respect to the weights": ('''
model.requires_grad_(True)
scores = model(X)
scores.gather(1, y.view(-1, 1)).sum().backward()
saliency = model.conv[0].weight.grad.abs().amax(dim=1)
''', "test_saliency", "gradient with respect to the weights"),
    "saliency: weights made to require gradients, gradient of the input": ('''
model.requires_grad_(True)
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.abs().amax(dim=1)
''', "test_saliency", "with respect to the input images only"),
    "saliency: scores[:, y] (every class in y, for every image)": ('''
X = X.clone().requires_grad_()
scores = model(X)
scores[:, y].sum().backward()
saliency = X.grad.abs().amax(dim=1)
''', "test_saliency", "scores[:, y].sum()"),
    "saliency: the predicted class instead of y": ('''
X = X.clone().requires_grad_()
scores = model(X)
scores.max(dim=1).values.sum().backward()
saliency = X.grad.abs().amax(dim=1)
''', "test_saliency", "*predicted*"),
    "saliency: the cross-entropy loss instead of the score": ('''
X = X.clone().requires_grad_()
F.cross_entropy(model(X), y).backward()
saliency = X.grad.abs().amax(dim=1)
''', "test_saliency", "cross-entropy"),
    "saliency: the model put in training mode": ('''
model.train()
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.abs().amax(dim=1)
''', "test_saliency", "in training mode"),
    "saliency: the model left in training mode": ('''
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.abs().amax(dim=1)
model.train()
''', "test_saliency", "left `model` in training mode"),
    "saliency: sum over channels": ('''
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.abs().sum(dim=1)
''', "test_saliency_hidden", "the sum over channels"),
    "saliency: maximum before the absolute value": ('''
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.amax(dim=1).abs()
''', "test_saliency_hidden", "absolute value first"),
    "saliency: channel dimension kept": ('''
X = X.clone().requires_grad_()
model(X).gather(1, y.view(-1, 1)).sum().backward()
saliency = X.grad.abs()
''', "test_saliency", "over the channel dimension"),
}

# --------------------------------------------------------------------------- make_fooling_image
CORRECT_FOOLING = {
    "fooling: autograd.grad, out-of-place update": '''
for step in range(max_steps):
    scores = model(X_fooling)
    if scores.argmax(1).item() == target_y:
        break
    g, = torch.autograd.grad(scores[0, target_y], X_fooling)
    X_fooling = (X_fooling + learning_rate * g / g.norm()).detach().requires_grad_()
''',
    "fooling: sign steps of 0.01 (iterated FGSM), grad = None": '''
step = 0.01
for _ in range(max_steps):
    scores = model(X_fooling)
    if scores[0].argmax() == target_y:
        break
    scores[0, target_y].backward()
    with torch.no_grad():
        X_fooling += step * X_fooling.grad.sign()
    X_fooling.grad = None
''',
    "fooling: Adam on the cross-entropy towards the target": '''
optimizer = torch.optim.Adam([X_fooling], lr=0.01)
target = torch.tensor([target_y])
for _ in range(max_steps):
    optimizer.zero_grad()
    scores = model(X_fooling)
    if scores.argmax(dim=1).item() == target_y:
        break
    F.cross_entropy(scores, target).backward()
    optimizer.step()
''',
    "fooling: CS231n's while loop with .data": '''
steps = 0
while model(X_fooling).data.max(1)[1].item() != target_y and steps < max_steps:
    score = model(X_fooling)[0, target_y]
    score.backward()
    g = X_fooling.grad.data
    X_fooling.data += learning_rate * g / torch.norm(g)
    X_fooling.grad.data.zero_()
    steps += 1
''',
    "fooling: step first, then check, add_ with alpha": '''
for _ in range(max_steps):
    score = model(X_fooling)[0, target_y]
    g, = torch.autograd.grad(score, X_fooling)
    with torch.no_grad():
        X_fooling.add_(g, alpha=learning_rate / g.norm().item())
    if model(X_fooling).argmax().item() == target_y:
        break
''',
}


def _fooling(edit_old, edit_new):
    return {"fooling": [(edit_old, edit_new)]}


BUGGY_FOOLING = {
    "fooling: descent instead of ascent": (
        _fooling("X_fooling += learning_rate * g / g.norm()", "X_fooling -= learning_rate * g / g.norm()"),
        "test_fooling", "gradient descent"),
    "fooling: no zero_grad (the image's gradient accumulates)": (
        _fooling("            X_fooling.grad.zero_()\n", ""), "test_fooling", "was not reset between steps"),
    "fooling: model.zero_grad() instead of resetting the image's gradient": (
        _fooling("X_fooling.grad.zero_()", "model.zero_grad()"), "test_fooling", "model.zero_grad() does not reset"),
    "fooling: the currently predicted class's score": (
        _fooling("scores[0, target_y].backward()", "scores[0].max().backward()"),
        "test_fooling", "your steps follow the gradient of the score of class"),
    "fooling: class index off by one": (
        _fooling("scores[0, target_y].backward()", "scores[0, target_y - 1].backward()"),
        "test_fooling", "your steps follow the gradient of the score of class"),
    "fooling: the model put in training mode": (
        _fooling("    for _ in range(max_steps):", "    model.train()\n    for _ in range(max_steps):"),
        "test_fooling", "in training mode"),
    "fooling: no early stop": (
        _fooling("        if scores.argmax(dim=1).item() == target_y:\n            break\n", ""),
        "test_fooling", "Stop as soon as the model predicts target_y"),
    "fooling: changes X in place": (
        _fooling("    X_fooling = X.clone().requires_grad_()", "    X_fooling = X.requires_grad_()"),
        "test_fooling", "changed the `X` it was given"),
    "fooling: ignores max_steps": (
        _fooling("for _ in range(max_steps):", "for _ in range(100):"), "test_fooling_hidden", "at most max_steps"),
}

# --------------------------------------------------------------------------- class_visualization
CORRECT_VISUALIZATION = {
    "visualization: autograd.grad, out-of-place update, vector_norm": '''
scores = model(img)
objective = scores[0, target_y] - l2_reg * torch.sum(img ** 2)
g, = torch.autograd.grad(objective, img)
img = (img + learning_rate * g / torch.linalg.vector_norm(g)).detach().requires_grad_(True)
''',
    "visualization: .data updates, img.norm() ** 2, grad = None": '''
score = model(img)[0, target_y]
objective = score - l2_reg * img.norm() ** 2
objective.backward()
img.data += learning_rate * img.grad.data / img.grad.data.norm()
img.grad = None
''',
    "visualization: the penalty's gradient added by hand": '''
model(img)[0, target_y].backward()
with torch.no_grad():
    g = img.grad - 2 * l2_reg * img
    img.add_(learning_rate * g / g.norm())
    img.grad.zero_()
''',
    "visualization: gather and F.normalize": '''
scores = model(img)
objective = scores.gather(1, torch.tensor([[target_y]])).sum() - l2_reg * (img * img).sum()
objective.backward()
with torch.no_grad():
    img.add_(learning_rate * F.normalize(img.grad.flatten(), dim=0).view_as(img))
img.grad.zero_()
''',
}


def _visualization(edit_old, edit_new):
    return {"class_visualization": [(edit_old, edit_new)]}


BUGGY_VISUALIZATION = {
    "visualization: descent instead of ascent": (
        _visualization("img += learning_rate * img.grad / img.grad.norm()", "img -= learning_rate * img.grad / img.grad.norm()"),
        "test_class_visualization", "gradient descent"),
    "visualization: no zero_grad": (
        _visualization("            img.grad.zero_()\n", ""), "test_class_visualization", "was not reset between steps"),
    "visualization: the largest score of any class": (
        _visualization("objective = model(img)[0, target_y] - l2_reg", "objective = model(img).max() - l2_reg"),
        "test_class_visualization", "rose most is that of class"),
    "visualization: the model put in training mode": (
        _visualization("        objective = model(img)[0, target_y]", "        model.train()\n        objective = model(img)[0, target_y]"),
        "test_class_visualization", "in training mode"),
    "visualization: the L2 penalty added instead of subtracted": (
        _visualization("[0, target_y] - l2_reg * img.square().sum()", "[0, target_y] + l2_reg * img.square().sum()"),
        "test_class_visualization_hidden", "the L2 penalty must pull the pixels towards 0"),
    "visualization: no L2 penalty": (
        _visualization(" - l2_reg * img.square().sum()", ""),
        "test_class_visualization_hidden", "the L2 penalty must pull the pixels towards 0"),
}

# --------------------------------------------------------------------------- confidence_along_interpolation
CORRECT_INTERPOLATION = {
    "interpolation: one image at a time, torch.lerp, inference_mode": '''
images, probabilities = [], []
with torch.inference_mode():
    for t in torch.linspace(0, 1, steps):
        image = generator(torch.lerp(z0, z1, t).unsqueeze(0), torch.tensor([label]))
        images.append(image)
        probabilities.append(F.softmax(model(image), dim=1)[0, label])
images, probabilities = torch.cat(images), torch.stack(probabilities)
''',
    "interpolation: numpy's linspace, exp of log_softmax, eval() called again": '''
import numpy as np
generator.eval()
model.eval()
ts = torch.tensor(np.linspace(0.0, 1.0, steps), dtype=torch.float32)
z = torch.stack([z0 + t * (z1 - z0) for t in ts])
with torch.no_grad():
    images = generator(z, torch.full((steps,), label))
    probabilities = torch.exp(F.log_softmax(model(images), dim=1))[:, label]
''',
    "interpolation: outer product, .detach() instead of no_grad": '''
weights = torch.linspace(0, 1, steps)
z = torch.outer(1 - weights, z0) + torch.outer(weights, z1)
images = generator(z, label * torch.ones(steps, dtype=torch.long)).detach()
probabilities = model(images).softmax(dim=1)[:, label].detach()
''',
}


def _interpolation(edit_old, edit_new):
    return {"interpolation": [(edit_old, edit_new)]}


BUGGY_INTERPOLATION = {
    "interpolation: the generator left in training mode (the CGAN lab's sampling pattern)": (
        _interpolation("        probabilities = F.softmax(model(images), dim=1)[:, label]\n",
                       "        probabilities = F.softmax(model(images), dim=1)[:, label]\n    generator.train()\n"),
        "test_interpolation", "left `generator` in training mode"),
    "interpolation: the generator run in training mode": (
        _interpolation("    with torch.no_grad():\n", "    generator.train()\n    with torch.no_grad():\n"),
        "test_interpolation", "ran `generator` in training mode"),
    "interpolation: logits instead of probabilities": (
        _interpolation("F.softmax(model(images), dim=1)[:, label]", "model(images)[:, label]"),
        "test_interpolation", "raw scores (logits)"),
    "interpolation: the predicted class's probability": (
        _interpolation("F.softmax(model(images), dim=1)[:, label]", "F.softmax(model(images), dim=1).max(dim=1).values"),
        "test_interpolation", "*predicted* class"),
    "interpolation: t = 0, 1/steps, ..., (steps-1)/steps (z1 never reached)": (
        _interpolation("t = torch.linspace(0, 1, steps).view(-1, 1)", "t = (torch.arange(steps) / steps).view(-1, 1)"),
        "test_interpolation", "evenly spaced"),
}

CORRECT = {**{name: region("saliency", code) for name, code in CORRECT_SALIENCY.items()},
           **{name: region("fooling", code) for name, code in CORRECT_FOOLING.items()},
           **{name: region("class_visualization", code) for name, code in CORRECT_VISUALIZATION.items()},
           **{name: region("interpolation", code) for name, code in CORRECT_INTERPOLATION.items()}}
BUGS = {**{name: (region("saliency", code), test, phrase) for name, (code, test, phrase) in BUGGY_SALIENCY.items()},
        **BUGGY_FOOLING, **BUGGY_VISUALIZATION, **BUGGY_INTERPOLATION}


def apply(source, edits):
    """`source` with every edit applied; (SOLUTION, code) replaces the solution region, indented like its markers."""
    plain = []
    for old, new in edits:
        if old is not SOLUTION:
            plain.append((old, new))
            continue
        start, end = source.index(BEGIN) + len(BEGIN), source.index(END)
        indent = source[source.rindex("\n", 0, start - len(BEGIN)) + 1:start - len(BEGIN)]
        source = source[:start] + textwrap.indent(textwrap.dedent(new).strip("\n") + "\n", indent) + source[end - len(indent):]
    return apply_edits(source, plain)


def sources(edits_by_cell, solution_sources):
    """{grade_id: edited source} for load_cells(replace=...)."""
    return {grade_id: apply(solution_sources[grade_id], edits) for grade_id, edits in edits_by_cell.items()}
