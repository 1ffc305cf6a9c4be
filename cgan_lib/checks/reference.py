"""The reference networks the checks drive `train_step` with, and the update it must make.

The networks have no random layers and no batch norm, so an update is a function of
the starting weights, the real batch and the random draws the student's code makes
(the noise and labels it gives the generator). They record every call at the model
boundary, positional and keyword arguments alike:

    ("G", noise, labels)        a generator call
    ("D", images, labels)       a discriminator call

From the draws, `generator_grads` and `discriminator_grads` compute what one
"Train Generator" and one "Train Discriminator" update must do, with the least-squares
loss of the lab (nn.MSELoss against targets 1 for real and 0 for fake). Their keyword
arguments also compute the updates that known mistakes make from the same draws,
which is how a failing check names the mistake.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

IMG_PIXELS = 28 * 28


def _noise_matrix(noise, latent_dim):
    if not torch.is_tensor(noise) or not noise.is_floating_point():
        raise TypeError(f"the generator's noise must be a float tensor, it got {_describe(noise)}")
    if noise.dim() < 2 or noise[0].numel() != latent_dim:
        raise ValueError(f"the generator got noise of shape {tuple(noise.shape)}; it takes (batch_size, "
                         f"{latent_dim}): one noise vector of length opt.latent_dim per image")
    return noise.reshape(len(noise), latent_dim)


def _label_vector(labels, n, n_classes, who):
    if not torch.is_tensor(labels) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"the {who}'s labels must be an integer tensor (torch.long), it got {_describe(labels)}")
    labels = labels.reshape(-1).long()
    if len(labels) != n:
        raise ValueError(f"the {who} got {n} images' worth of input but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"the {who} got labels {labels.min().item()}..{labels.max().item()}; classes are "
                         f"0..{n_classes - 1}")
    return labels


def _describe(x):
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


class ReferenceGenerator(nn.Module):
    """A small conditional generator: [noise | embedding(label)] -> hidden -> 784, LeakyReLU, Tanh.

    `batch_norm=True` normalises the hidden layer with the statistics of each batch (never
    running statistics, so the output is still a function of the weights and the inputs):
    it learns several times faster, which the training run needs.
    """

    def __init__(self, latent_dim=100, n_classes=10, label_dim=50, hidden=128, batch_norm=False):
        super().__init__()
        self.latent_dim, self.n_classes, self.recorder = latent_dim, n_classes, None
        self.label_embedding = nn.Embedding(n_classes, label_dim)
        norm = [nn.BatchNorm1d(hidden, track_running_stats=False)] if batch_norm else []
        self.model = nn.Sequential(nn.Linear(latent_dim + label_dim, hidden), *norm, nn.LeakyReLU(0.2),
                                   nn.Linear(hidden, IMG_PIXELS), nn.Tanh())

    def forward(self, noise, labels):
        noise = _noise_matrix(noise, self.latent_dim)
        labels = _label_vector(labels, len(noise), self.n_classes, "generator")
        if self.recorder is not None:
            self.recorder.append(("G", noise.detach().clone(), labels.detach().clone()))
        hidden = torch.cat((noise, self.label_embedding(labels)), dim=1)
        return self.model(hidden).view(len(noise), 1, 28, 28)


class ReferenceDiscriminator(nn.Module):
    """A small conditional discriminator: [image | embedding(label)] -> 128 -> 1 score, no activation."""

    def __init__(self, n_classes=10, label_dim=50, hidden=128):
        super().__init__()
        self.n_classes, self.recorder = n_classes, None
        self.label_embedding = nn.Embedding(n_classes, label_dim)
        self.model = nn.Sequential(nn.Linear(IMG_PIXELS + label_dim, hidden), nn.LeakyReLU(0.2),
                                   nn.Linear(hidden, 1))

    def forward(self, img, labels):
        if not torch.is_tensor(img) or not img.is_floating_point() or img.dim() < 2 or img[0].numel() != IMG_PIXELS:
            raise ValueError(f"the discriminator takes images of shape (N, 1, 28, 28), it got {_describe(img)}")
        flat = img.reshape(len(img), IMG_PIXELS)
        labels = _label_vector(labels, len(flat), self.n_classes, "discriminator")
        if self.recorder is not None:
            self.recorder.append(("D", flat.detach().clone(), labels.detach().clone()))
        return self.model(torch.cat((flat, self.label_embedding(labels)), dim=1))


def reference_models(latent_dim=100, n_classes=10, label_dim=50, hidden=128, seed=0, device="cpu", batch_norm=False):
    """A fresh (generator, discriminator) pair, initialised from `seed` without touching the global RNG.

    The weights are those torch's constructors draw after torch.manual_seed(seed), drawn from a
    generator of their own: the grader judges two tests at once, and no other thread's draw
    can land among these (the probe process builds the same networks and must get the same numbers).
    """
    with torch.device("meta"):  # built without drawing anything
        generator = ReferenceGenerator(latent_dim, n_classes, label_dim, hidden, batch_norm)
        discriminator = ReferenceDiscriminator(n_classes, label_dim, hidden)
    draw = torch.Generator().manual_seed(int(seed))
    return _initialised(generator, draw).to(device), _initialised(discriminator, draw).to(device)


def _initialised(network, draw):
    """`network` (on the meta device) on the CPU, its layers initialised in order as their constructors do."""
    network.to_empty(device="cpu")
    for layer in network.modules():
        if isinstance(layer, nn.Linear):  # nn.Linear.reset_parameters, with `draw`
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=draw)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=draw)
        elif isinstance(layer, nn.Embedding):
            nn.init.normal_(layer.weight, generator=draw)
        elif isinstance(layer, nn.BatchNorm1d):
            layer.reset_parameters()  # ones and zeros: no draws
    return network


# --------------------------------------------------------------------------- the reference update
def _loss(scores, target):
    return F.mse_loss(scores, torch.full_like(scores, float(target)))


def generator_grads(G, D, g_params, d_params, noise, gen_labels, *, target=1.0, scored_with=None):
    """One "Train Generator" update's gradients: (grads of G, grads left in D, g_loss).

    g_loss = MSE(D(G(noise, gen_labels), gen_labels), target); `target=0` and
    `scored_with=<other labels>` give two known mistakes.
    """
    g_leaves = {k: v.detach().requires_grad_(True) for k, v in g_params.items()}
    d_leaves = {k: v.detach().requires_grad_(True) for k, v in d_params.items()}
    images = functional_call(G, g_leaves, (noise, gen_labels))
    scores = functional_call(D, d_leaves, (images, gen_labels if scored_with is None else scored_with))
    loss = _loss(scores, target)
    grads = torch.autograd.grad(loss, [*g_leaves.values(), *d_leaves.values()], allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip([*g_leaves.values(), *d_leaves.values()], grads)]
    return grads[:len(g_leaves)], grads[len(g_leaves):], loss.item()


def discriminator_grads(D, d_params, real_imgs, real_labels, fake_imgs, fake_labels, *,
                        real_target=1.0, fake_target=0.0, parts=("real", "fake")):
    """One "Train Discriminator" update's gradients and d_loss = (real_loss + fake_loss) / 2.

    The keyword arguments give known mistakes: swapped targets, only one of the two losses.
    """
    d_leaves = {k: v.detach().requires_grad_(True) for k, v in d_params.items()}
    losses = []
    if "real" in parts:
        losses.append(_loss(functional_call(D, d_leaves, (real_imgs, real_labels)), real_target))
    if "fake" in parts:
        losses.append(_loss(functional_call(D, d_leaves, (fake_imgs.detach(), fake_labels)), fake_target))
    loss = sum(losses) / 2
    grads = torch.autograd.grad(loss, list(d_leaves.values()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(d_leaves.values(), grads)], loss.item()


def generate(G, g_params, noise, labels):
    """The images G with weights `g_params` makes from (noise, labels), without gradients."""
    with torch.no_grad():
        return functional_call(G, g_params, (noise, labels))


class AdamReplica:
    """torch.optim.Adam over copies of a network's weights, fed with gradients from elsewhere.

    The checks give train_step fresh Adam optimizers; replaying the gradients each of its
    step() calls used on this replica tells what the weights must be afterwards.
    """

    def __init__(self, params, lr, betas, state=None):
        self.names = list(params)
        self.leaves = [p.detach().clone().requires_grad_(True) for p in params.values()]
        self.optimizer = torch.optim.Adam(self.leaves, lr=lr, betas=tuple(betas))
        if state:  # a state_dict()["state"] as a list, one dict per parameter
            group = {k: v for k, v in self.optimizer.param_groups[0].items() if k != "params"}
            copies = {i: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for i, s in enumerate(state)}
            self.optimizer.load_state_dict({"state": copies,
                                            "param_groups": [{**group, "params": list(range(len(self.leaves)))}]})

    def step(self, grads):
        for leaf, grad in zip(self.leaves, grads):
            leaf.grad = None if grad is None else grad.detach().clone()
        self.optimizer.step()
        return self.params()

    def params(self):
        return {name: leaf.detach().clone() for name, leaf in zip(self.names, self.leaves)}
