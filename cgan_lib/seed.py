"""One call to make a run repeatable: same seed -> same batches, same noise, same initial weights."""
import os
import random

import numpy as np
import torch


def seed_everything(seed=0, deterministic=False):
    """Seed Python's `random`, NumPy's global generator and torch (CPU and every CUDA device).

    With `deterministic=True`, also ask cuDNN and torch for deterministic kernels
    (slower on a GPU; makes no difference on a CPU).
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses such as DataLoader workers
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed
