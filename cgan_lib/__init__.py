"""Shared helpers for the Conditional-GAN lab: data, device, seeding, plots, checkpoints, evaluation.

Nothing here implements the exercise (Generator, Discriminator, train_step,
generate_latent_points): that is the student's work.
"""
from .data import CLASS_NAMES, N_CLASSES, FashionMNISTError, InMemoryLoader, load_tensors, make_dataloader
from .device import FloatTensor, LongTensor, cuda, device
from .seed import seed_everything
