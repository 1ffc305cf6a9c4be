import functools
import gzip
import hashlib
import http.server
import threading

import pytest
import torch
from torchvision.datasets import FashionMNIST

from cgan_lib import data
from cgan_lib.data import FashionMNISTError

ORIGINAL_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No dataset anywhere: the project's data/ and Debian's folder point at empty places."""
    monkeypatch.delenv("CGAN_DATA_DIR", raising=False)
    monkeypatch.delenv("CGAN_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "PROJECT_DATA_DIR", tmp_path / "project-data")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    return tmp_path


def link_dataset(real_data_dir, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ORIGINAL_FILES:
        (folder / name).symlink_to(real_data_dir / name)
    return folder


def idx_bytes(magic, dims, payload):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


# --- the real dataset ---------------------------------------------------------------------

def test_real_splits_have_the_expected_counts_shapes_and_range(train_tensors, test_tensors):
    for (images, labels), n in ((train_tensors, 60000), (test_tensors, 10000)):
        assert images.shape == (n, 1, 28, 28) and images.dtype == torch.float32
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert images.min() == -1 and images.max() == 1
        assert data.class_counts(labels) == [n // 10] * 10


def test_seeds_dataloader_and_fast_path_give_the_same_numbers(real_data_dir, train_tensors):
    images, labels = train_tensors
    loader = data.make_dataloader("train", batch_size=64, shuffle=False)
    assert len(loader) == 938 and len(loader.dataset) == 60000
    imgs, lbls = next(iter(loader))
    assert imgs.shape == (64, 1, 28, 28) and lbls.dtype == torch.int64
    torch.testing.assert_close(imgs, images[:64])
    assert torch.equal(lbls, labels[:64])


def test_dataset_exposes_the_class_names(real_data_dir):
    dataset = data.FashionMNISTDataset("test")
    assert dataset.classes[9] == "Ankle boot" and len(dataset) == 10000


# --- the fast in-memory iterator ------------------------------------------------------------

def small_split(n=100):
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    return images, torch.arange(n) % 10


def test_in_memory_loader_visits_every_sample_once_per_epoch():
    images, labels = small_split(100)
    loader = data.InMemoryLoader(images, labels, batch_size=32)
    assert len(loader) == 4
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [32, 32, 32, 4]
    seen = torch.cat([imgs[:, 0, 0, 0] for imgs, _ in batches]).long()
    assert sorted(seen.tolist()) == list(range(100))
    for imgs, lbls in batches:  # images and labels stay paired
        assert torch.equal(imgs[:, 0, 0, 0].long() % 10, lbls)


def test_in_memory_loader_drop_last_and_no_shuffle():
    images, labels = small_split(100)
    loader = data.InMemoryLoader(images, labels, batch_size=32, drop_last=True, shuffle=False)
    assert len(loader) == 3
    batches = list(loader)
    assert len(batches) == 3 and all(len(lbls) == 32 for _, lbls in batches)
    assert batches[0][0][:, 0, 0, 0].tolist() == list(range(32))


def test_in_memory_loader_is_seeded_and_reshuffles_each_epoch():
    images, labels = small_split(100)
    order = lambda batches: torch.cat([imgs[:, 0, 0, 0] for imgs, _ in batches]).tolist()  # noqa: E731
    a, b = data.InMemoryLoader(images, labels, seed=3), data.InMemoryLoader(images, labels, seed=3)
    first_a, first_b = order(a), order(b)
    assert first_a == first_b
    assert order(a) != first_a  # epoch 2 differs from epoch 1
    assert order(data.InMemoryLoader(images, labels, seed=4)) != first_a


def test_in_memory_loader_rejects_mismatched_tensors():
    with pytest.raises(ValueError, match="100 images but 99 labels"):
        data.InMemoryLoader(torch.zeros(100, 1, 28, 28), torch.zeros(99, dtype=torch.long))


def test_subset_per_class_is_deterministic_and_balanced():
    images, labels = small_split(1000)
    sub_images, sub_labels = data.subset_per_class(images, labels, k=7, seed=1)
    assert sub_labels.tolist() == [c for c in range(10) for _ in range(7)]
    again, _ = data.subset_per_class(images, labels, k=7, seed=1)
    other, _ = data.subset_per_class(images, labels, k=7, seed=2)
    assert torch.equal(sub_images, again) and not torch.equal(sub_images, other)
    with pytest.raises(ValueError, match=r"class 0 \(T-shirt/top\) has only 100 samples, 101 asked for"):
        data.subset_per_class(images, labels, k=101)


# --- where the data is found ------------------------------------------------------------------

def test_search_order_explicit_then_env_then_project_then_debian(real_data_dir, nowhere, monkeypatch):
    debian = link_dataset(real_data_dir, nowhere / "debian")
    assert data.find_fashion_mnist("train")[0].parent == debian
    project = link_dataset(real_data_dir, nowhere / "project-data")
    assert data.find_fashion_mnist("train")[0].parent == project
    env = link_dataset(real_data_dir, nowhere / "env")
    monkeypatch.setenv("CGAN_DATA_DIR", str(env))
    assert data.find_fashion_mnist("test")[1].parent == env
    explicit = link_dataset(real_data_dir, nowhere / "explicit")
    assert data.find_fashion_mnist("test", root=explicit)[0].parent == explicit


def test_torchvision_layout_with_uncompressed_files_is_found(real_data_dir, nowhere):
    raw = nowhere / "project-data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ORIGINAL_FILES[2:]:
        (raw / name[:-3]).write_bytes(gzip.decompress((real_data_dir / name).read_bytes()))
    images, labels = data.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert data.class_counts(labels) == [1000] * 10


def test_nothing_found_names_every_place_tried_and_the_fixes(nowhere):
    with pytest.raises(FashionMNISTError) as err:
        data.load_tensors("train")
    message = str(err.value)
    for expected in (str(nowhere / "project-data"), str(nowhere / "debian"), "not attempted",
                     "apt-get install dataset-fashion-mnist", "CGAN_DATA_DIR", "download=True"):
        assert expected in message


def test_a_named_folder_without_the_files_is_an_error_even_if_debian_has_them(real_data_dir, nowhere, monkeypatch):
    link_dataset(real_data_dir, nowhere / "debian")
    (nowhere / "empty").mkdir()
    with pytest.raises(FashionMNISTError, match="the folder you passed.*exists but holds no"):
        data.find_fashion_mnist("train", root=nowhere / "empty")
    monkeypatch.setenv("CGAN_DATA_DIR", str(nowhere / "typo"))
    with pytest.raises(FashionMNISTError, match=r"\$CGAN_DATA_DIR: .*typo does not exist"):
        data.find_fashion_mnist("train")


def test_half_a_split_is_reported(nowhere):
    folder = nowhere / "half"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FashionMNISTError, match="only one of the two train files, train-labels-idx1-ubyte"):
        data.find_fashion_mnist("train", root=folder)


def test_bad_split_name():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.find_fashion_mnist("validation")


# --- damaged files: small IDX files written here ------------------------------------------------

def write_split(folder, images_bytes, labels_bytes, gz=True):
    folder.mkdir(exist_ok=True)
    for name, payload in (("t10k-images-idx3-ubyte", images_bytes), ("t10k-labels-idx1-ubyte", labels_bytes)):
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)


GOOD_IMAGES = idx_bytes(2051, (10000, 28, 28), bytes(10000 * 28 * 28))
GOOD_LABELS = idx_bytes(2049, (10000,), bytes(i % 10 for i in range(10000)))


def test_small_well_formed_files_load(tmp_path):
    write_split(tmp_path, GOOD_IMAGES, GOOD_LABELS)
    images, labels = data.load_tensors("test", root=tmp_path)
    assert images.shape == (10000, 1, 28, 28) and bool((images == -1).all())
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


@pytest.mark.parametrize("images, labels, gz, expected", [
    (GOOD_IMAGES, GOOD_LABELS[:-10], True, r"t10k-labels-idx1-ubyte.gz is damaged: it holds 9998 bytes, expected 10008"),
    (GOOD_LABELS, GOOD_LABELS, True, r"t10k-images-idx3-ubyte.gz is damaged: wrong magic number 2049 \(expected 2051\)"),
    (idx_bytes(2051, (10000, 32, 32), b""), GOOD_LABELS, True, r"header says shape \(10000, 32, 32\), expected \(10000, 28, 28\)"),
    (GOOD_IMAGES[:1000], GOOD_LABELS, False, r"t10k-images-idx3-ubyte is damaged: it holds 1000 bytes"),
    (b"", GOOD_LABELS, False, r"wrong magic number None"),
    (GOOD_IMAGES, idx_bytes(2049, (10000,), bytes([11]) * 10000), True, r"labels must be 0..9, found 11..11"),
])
def test_damaged_files_get_one_clear_error(tmp_path, images, labels, gz, expected):
    write_split(tmp_path, images, labels, gz)
    with pytest.raises(FashionMNISTError, match=expected) as err:
        data.load_tensors("test", root=tmp_path)
    assert "fresh copy" in str(err.value)


def test_truncated_gzip_and_not_gzip(tmp_path):
    write_split(tmp_path, GOOD_IMAGES, GOOD_LABELS)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(FashionMNISTError, match=r"images-idx3-ubyte.gz is damaged: the gzip stream ends early"):
        data.load_tensors("test", root=tmp_path)
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(FashionMNISTError, match=r"images-idx3-ubyte.gz is damaged: it is not a gzip file"):
        data.load_tensors("test", root=tmp_path)


# --- torchvision's download, against a server on localhost ---------------------------------------

@pytest.fixture
def local_mirror(real_data_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(real_data_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_through_torchvision_when_allowed(real_data_dir, nowhere, local_mirror, monkeypatch):
    # Debian re-compressed the files, so their MD5s differ from the ones torchvision checks
    md5s = [(name, hashlib.md5((real_data_dir / name).read_bytes()).hexdigest()) for name in ORIGINAL_FILES]
    monkeypatch.setattr(FashionMNIST, "resources", md5s)
    monkeypatch.setattr(FashionMNIST, "mirrors", [local_mirror])
    with pytest.raises(FashionMNISTError, match="not attempted"):
        data.find_fashion_mnist("test")
    monkeypatch.setenv("CGAN_DOWNLOAD", "1")
    images, labels = data.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28)
    assert (nowhere / "project-data" / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
    monkeypatch.delenv("CGAN_DOWNLOAD")
    assert data.find_fashion_mnist("test")[0].parent.name == "raw"  # found offline next time


def test_failed_download_is_reported_with_everything_tried(nowhere, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # discard port: refused
    with pytest.raises(FashionMNISTError) as err:
        data.load_fashion_mnist("train", download=True)
    message = str(err.value)
    assert "could not be found or downloaded" in message
    assert "torchvision download into" in message and "failed" in message
    assert "apt-get install dataset-fashion-mnist" in message
