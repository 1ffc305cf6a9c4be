"""Fashion-MNIST: find it, read it, check it, and hand it out in batches.

Two ways to iterate, yielding the same ``(imgs, labels)`` batches:

* ``make_dataloader`` -- the seeds' way: a torchvision ``Dataset`` with
  ``ToTensor()`` + ``Normalize([0.5], [0.5])`` behind a ``DataLoader``
  (one PIL image per sample, per batch, per epoch).
* ``InMemoryLoader`` -- the fast way: the whole split held once as a float
  tensor in [-1, 1] (optionally on the GPU), shuffled by index each epoch.

Where the data is looked for, in order: an explicit ``root`` or the
``CGAN_DATA_DIR`` environment variable, the project's ``data/`` directory,
Debian's ``dataset-fashion-mnist`` package, and torchvision's download (only
when ``download=True`` or ``CGAN_DOWNLOAD=1``).
"""
import gzip
import os
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
N_CLASSES = len(CLASS_NAMES)
IMG_SIZE = 28

PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# split -> (images file, labels file, number of samples), the original names
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049

HOW_TO_GET_IT = """\
To fix this, do one of:
  * on Debian/Ubuntu:   sudo apt-get install dataset-fashion-mnist
                        (puts the four .gz files in /usr/share/datasets/fashion-mnist/)
  * with the files elsewhere (e.g. copied from a USB stick):
                        export CGAN_DATA_DIR=/path/to/the/folder/with/the/four/files
                        (or pass root=... to the loading function)
  * with internet:      export CGAN_DOWNLOAD=1   (or pass download=True)
                        torchvision downloads them into {data_dir}"""


class FashionMNISTError(RuntimeError):
    """Fashion-MNIST is missing, incomplete or damaged. The message says what to do."""


def _split_files(split):
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return FILES[split]


def _find_file(folder, name):
    """The file `name` or `name.gz` in `folder` or in torchvision's `FashionMNIST/raw` below it."""
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for candidate in (sub / name, sub / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _candidate_dirs(root):
    """(description, folder) pairs in the order they are searched."""
    candidates = []
    if root is not None:
        candidates.append(("the folder you passed (root=...)", Path(root)))
    elif os.environ.get("CGAN_DATA_DIR"):
        candidates.append(("$CGAN_DATA_DIR", Path(os.environ["CGAN_DATA_DIR"])))
    candidates.append(("the project's data/ folder", PROJECT_DATA_DIR))
    candidates.append(("Debian's dataset-fashion-mnist package", DEBIAN_DIR))
    return candidates


def _want_download(download):
    if download is not None:
        return bool(download)
    return os.environ.get("CGAN_DOWNLOAD", "").strip().lower() in ("1", "true", "yes")


def find_fashion_mnist(split="train", root=None, download=None):
    """Return (images_path, labels_path) for `split`, searching the places listed in this module's doc.

    An explicit `root` (or $CGAN_DATA_DIR) that lacks the files is an error, not
    something to silently skip: the user asked for that folder.
    """
    images_name, labels_name, _ = _split_files(split)
    named_folder = root is not None or bool(os.environ.get("CGAN_DATA_DIR"))
    tried = []
    for description, folder in _candidate_dirs(root):
        images, labels = _find_file(folder, images_name), _find_file(folder, labels_name)
        if images and labels:
            return images, labels
        if images or labels:
            missing = labels_name if images else images_name
            tried.append(f"{description}: {folder} has only one of the two {split} files, {missing}[.gz] is missing")
        elif folder.is_dir():
            tried.append(f"{description}: {folder} exists but holds no {images_name}[.gz]")
        else:
            tried.append(f"{description}: {folder} does not exist")
        if named_folder:
            break  # the user named a folder: do not quietly use another one

    if named_folder:
        tried.append("other places and the download: not tried, because a folder was named")
    elif _want_download(download):
        return _download(split, tried)
    else:
        tried.append("torchvision download: not attempted (download=False and CGAN_DOWNLOAD unset)")
    raise FashionMNISTError(
        f"Fashion-MNIST ({split} split) was not found. Places tried, in order:\n"
        + "".join(f"  {i}. {t}\n" for i, t in enumerate(tried, 1))
        + HOW_TO_GET_IT.format(data_dir=PROJECT_DATA_DIR))


def _download(split, tried):
    from torchvision.datasets import FashionMNIST
    try:
        FashionMNIST(str(PROJECT_DATA_DIR), train=(split == "train"), download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError with long messages
        tried.append(f"torchvision download into {PROJECT_DATA_DIR}: failed ({type(err).__name__}: "
                     f"{str(err).strip().splitlines()[-1] if str(err).strip() else err!r})")
        raise FashionMNISTError(
            f"Fashion-MNIST ({split} split) could not be found or downloaded. Places tried, in order:\n"
            + "".join(f"  {i}. {t}\n" for i, t in enumerate(tried, 1))
            + HOW_TO_GET_IT.format(data_dir=PROJECT_DATA_DIR)) from None
    images_name, labels_name, _ = _split_files(split)
    return _find_file(PROJECT_DATA_DIR, images_name), _find_file(PROJECT_DATA_DIR, labels_name)


def _read_idx(path, magic, expected_shape):
    """Read one IDX file (plain or .gz) through torchvision's reader, after checking it is intact."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    def damaged(what):
        return FashionMNISTError(
            f"{path} is damaged: {what}.\n"
            f"Delete it and get a fresh copy (for the Debian package: "
            f"sudo apt-get install --reinstall dataset-fashion-mnist).")

    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (gzip.BadGzipFile, OSError) as err:
        if isinstance(err, gzip.BadGzipFile) or "gzip" in str(err).lower():
            raise damaged("it is not a gzip file") from None
        raise
    except EOFError:
        raise damaged("the gzip stream ends early (truncated download or copy)") from None

    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise damaged(f"wrong magic number {found} (expected {magic}): this is not the "
                      f"{'images' if magic == IMAGES_MAGIC else 'labels'} IDX file")
    n_dims = len(expected_shape)
    header = 4 * (n_dims + 1)
    dims = tuple(int.from_bytes(raw[4 * (i + 1):4 * (i + 2)], "big") for i in range(n_dims))
    if dims != expected_shape:
        raise damaged(f"its header says shape {dims}, expected {expected_shape}")
    expected_bytes = header + int(torch.tensor(expected_shape).prod())
    if len(raw) != expected_bytes:
        raise damaged(f"it holds {len(raw)} bytes, expected {expected_bytes} (truncated?)")

    # torchvision's readers take a path to an uncompressed file
    with tempfile.NamedTemporaryFile(suffix="-ubyte") as tmp:
        tmp.write(raw)
        tmp.flush()
        reader = read_image_file if magic == IMAGES_MAGIC else read_label_file
        return reader(tmp.name)


def cache_dir():
    """Where decoded splits are kept: $CGAN_DATA_CACHE, else ~/.cache/cgan-lab."""
    return Path(os.environ.get("CGAN_DATA_CACHE") or Path.home() / ".cache" / "cgan-lab")


def _cached_idx(path, magic, expected_shape):
    """_read_idx's tensor, decoded once per file and kept as a .npy beside its source's size and date.

    Decompressing and checking a split takes a few seconds; reading the kept array, a few
    milliseconds. A cache that cannot be written (a read-only folder) is simply not used.
    """
    import numpy as np

    stat = path.stat()
    cached = cache_dir() / f"{path.name}-{stat.st_size}-{stat.st_mtime_ns}.npy"
    try:
        array = np.load(cached, mmap_mode="r")
        if array.shape == expected_shape:
            return torch.from_numpy(np.array(array))  # a writable copy, from the page cache
    except (OSError, ValueError):
        pass
    tensor = _read_idx(path, magic, expected_shape)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        with open(partial, "wb") as f:
            np.save(f, tensor.numpy())
        os.replace(partial, cached)  # whole or not at all, whoever reads it meanwhile
    except OSError:
        pass
    return tensor


def load_fashion_mnist(split="train", root=None, download=None):
    """The raw split: uint8 images (N, 28, 28) and int64 labels (N,), verified."""
    images_path, labels_path = find_fashion_mnist(split, root, download)
    _, _, n = _split_files(split)
    images = _cached_idx(images_path, IMAGES_MAGIC, (n, IMG_SIZE, IMG_SIZE))
    labels = _cached_idx(labels_path, LABELS_MAGIC, (n,)).long()
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise FashionMNISTError(f"{labels_path} is damaged: labels must be 0..9, found "
                                f"{int(labels.min())}..{int(labels.max())}. Get a fresh copy.")
    return images, labels


def to_model_range(images_uint8):
    """uint8 [0, 255] -> float32 [-1, 1], the same numbers as ToTensor() + Normalize([0.5], [0.5])."""
    return images_uint8.float().div(255).sub(0.5).div(0.5)


def load_tensors(split="train", root=None, device="cpu", download=None):
    """The whole split as (images float32 (N, 1, 28, 28) in [-1, 1], labels int64 (N,)) on `device`."""
    images, labels = load_fashion_mnist(split, root, download)
    return to_model_range(images).unsqueeze(1).to(device), labels.to(device)


# --- The seeds' path: Dataset + DataLoader, one PIL image at a time ----------------------------

class FashionMNISTDataset(Dataset):
    """Fashion-MNIST as a map-style Dataset that, like torchvision's, returns (transform(PIL image), label)."""

    classes = list(CLASS_NAMES)

    def __init__(self, split="train", root=None, transform=None, download=None):
        self.data, self.targets = load_fashion_mnist(split, root, download)
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        from PIL import Image
        img = Image.fromarray(self.data[index].numpy())  # 2-D uint8 -> mode "L"
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


def seeds_transform():
    from torchvision import transforms
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])


def make_dataloader(split="train", batch_size=64, shuffle=True, root=None, download=None, **kwargs):
    """The seeds' DataLoader: ToTensor() + Normalize([0.5], [0.5]), images in [-1, 1]."""
    dataset = FashionMNISTDataset(split, root, transform=seeds_transform(), download=download)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)


# --- The fast path: the split held once in memory ---------------------------------------------

class InMemoryLoader:
    """Shuffled `(imgs, labels)` batches from tensors already in memory (CPU or GPU).

    Drop-in for the seeds' DataLoader in ``for i, (imgs, labels) in enumerate(loader)``
    and ``len(loader)``. Epoch ``e`` is shuffled with seed ``seed + e``, so a run is
    reproducible and every epoch sees a different order.
    """

    def __init__(self, images, labels, batch_size=64, shuffle=True, drop_last=False, seed=0):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.epoch = seed, 0

    @classmethod
    def from_split(cls, split="train", batch_size=64, device="cpu", root=None, **kwargs):
        images, labels = load_tensors(split, root, device)
        return cls(images, labels, batch_size, **kwargs)

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator).to(self.labels.device)
        else:
            order = torch.arange(n, device=self.labels.device)
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx]


def subset_per_class(images, labels, k, seed=0):
    """k samples of every class, chosen by a seeded shuffle; returned in class order (0,..,0,1,..)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    picked = []
    for c in range(N_CLASSES):
        of_class = order[labels[order] == c][:k]
        if len(of_class) < k:
            raise ValueError(f"class {c} ({CLASS_NAMES[c]}) has only {len(of_class)} samples, {k} asked for")
        picked.append(of_class)
    idx = torch.cat(picked)
    return images[idx], labels[idx]


def class_counts(labels):
    """Samples per class, as a list of 10 ints."""
    return torch.bincount(labels.cpu(), minlength=N_CLASSES).tolist()
