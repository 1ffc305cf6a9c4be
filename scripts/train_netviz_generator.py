"""Train the small generator bundled with the Network Visualization lab (cgan_lib/netviz_generator.py).

The exact command that made the committed cgan_lib/weights/netviz_generator.pt (run from the
repository root, CPU, torch 2.14.1):

    .venv/bin/python scripts/train_netviz_generator.py --update-checksum

It trains the bundled architecture (100+50 -> 128 -> 256 -> 784, BatchNorm on the second layer)
against a small conditional MLP discriminator with the CGAN lab's recipe (least-squares loss,
Adam 2e-4, betas (0.5, 0.999), batches of 64, a generator update then a discriminator update)
for EPOCHS epochs of the 60,000 training images, one thread, seeded. It prints the conditional
accuracy the lab's classifier measures and the time, writes the generator's weights as a
CGAN-lab checkpoint in float16 (about 0.5 MB) and prints their SHA-256. With --update-checksum
it also rewrites the BUNDLED_SHA256 line of cgan_lib/netviz_generator.py. Same seed, torch
version, CPU type and thread count give the same bytes; elsewhere the last bits differ (hence
the checksum step), the accuracy only by a point or two.
"""
import argparse
import copy
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cgan_lib import netviz_generator  # noqa: E402
from cgan_lib.checkpoint import save_checkpoint  # noqa: E402
from cgan_lib.data import InMemoryLoader, N_CLASSES, load_tensors  # noqa: E402
from cgan_lib.classifier import sha256_of  # noqa: E402
from cgan_lib.seed import seed_everything  # noqa: E402

EPOCHS = 12
SEED = 0
BATCH_SIZE = 64
LR, BETAS = 2e-4, (0.5, 0.999)
MODULE = Path(netviz_generator.__file__)


class Discriminator(nn.Module):
    """[image | embedding(label)] -> 512 -> 256 -> 1 score (least-squares GAN: no Sigmoid)."""

    def __init__(self, label_dim=50):
        super().__init__()
        self.label_embedding = nn.Embedding(N_CLASSES, label_dim)
        self.model = nn.Sequential(nn.Linear(784 + label_dim, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                   nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(256, 1))

    def forward(self, img, labels):
        return self.model(torch.cat((img.view(len(img), -1), self.label_embedding(labels)), dim=1))


def train(epochs, log=print):
    seed_everything(SEED)
    torch.set_num_threads(1)
    generator = netviz_generator.MLPGenerator(netviz_generator.bundled_layers())
    discriminator = Discriminator()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=LR, betas=BETAS)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=LR, betas=BETAS)
    loss = nn.MSELoss()
    images, labels = load_tensors("train")
    loader = InMemoryLoader(images, labels, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, seed=SEED)
    start = time.time()
    for epoch in range(epochs):
        for real, real_labels in loader:
            n = len(real)
            valid, fake = torch.ones(n, 1), torch.zeros(n, 1)
            optimizer_G.zero_grad()
            z = torch.randn(n, netviz_generator.LATENT_DIM)
            gen_labels = torch.randint(0, N_CLASSES, (n,))
            gen_imgs = generator(z, gen_labels)
            loss(discriminator(gen_imgs, gen_labels), valid).backward()
            optimizer_G.step()
            optimizer_D.zero_grad()
            d_loss = (loss(discriminator(real, real_labels), valid)
                      + loss(discriminator(gen_imgs.detach(), gen_labels), fake)) / 2
            d_loss.backward()
            optimizer_D.step()
        generator.eval()
        log(f"epoch {epoch + 1}/{epochs}: conditional accuracy "
            f"{netviz_generator.conditional_accuracy(generator, per_class=100):.1%}, {time.time() - start:.0f} s")
        generator.train()
    return generator.eval()


def save(generator, path):
    save_checkpoint(path, copy.deepcopy(generator).half(), recipe=f"scripts/train_netviz_generator.py, seed {SEED}")
    return sha256_of(path)


def update_checksum(sha256):
    text = MODULE.read_text()
    new, count = re.subn(r'^BUNDLED_SHA256 = "[0-9a-f]{64}"$', f'BUNDLED_SHA256 = "{sha256}"', text, flags=re.M)
    if count != 1:
        raise SystemExit(f"could not find the BUNDLED_SHA256 line in {MODULE}")
    MODULE.write_text(new)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", type=Path, default=netviz_generator.BUNDLED_PATH)
    parser.add_argument("--update-checksum", action="store_true", help=f"rewrite BUNDLED_SHA256 in {MODULE.name}")
    args = parser.parse_args()
    generator = train(args.epochs)
    sha256 = save(generator, args.out)
    reloaded = netviz_generator.bundled_generator(args.out, sha256=sha256)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), SHA-256 {sha256}; reloaded from float16: "
          f"conditional accuracy {netviz_generator.conditional_accuracy(reloaded, per_class=100):.1%}")
    if args.update_checksum:
        update_checksum(sha256)
        print(f"updated BUNDLED_SHA256 in {MODULE}")
    else:
        print(f'paste into {MODULE}: BUNDLED_SHA256 = "{sha256}"')


if __name__ == "__main__":
    main()
