"""Where tensors live: ``cuda``, ``device`` and the seeds' ``FloatTensor`` / ``LongTensor``.

The modern way::

    z = torch.randn(batch_size, 100, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)

The seeds' way, kept working on CPU and CUDA without deprecation warnings::

    valid = FloatTensor(batch_size, 1).fill_(1.0)
    z = FloatTensor(np.random.randn(batch_size, 100))
    labels = LongTensor(np.random.randint(0, 10, batch_size))
    real_imgs = imgs.type(FloatTensor)

``torch.cuda.FloatTensor(...)`` itself warns that it is deprecated, and
``torch.FloatTensor`` only ever makes CPU tensors, so here they are small
factories that call ``torch.empty`` / ``torch.as_tensor`` with the right
dtype and device. Set ``CGAN_DEVICE=cpu`` to stay on the CPU even with a GPU.
"""
import contextlib
import itertools
import os

import torch


def pick_device():
    """$CGAN_DEVICE if set, else CUDA when available, else CPU."""
    wanted = os.environ.get("CGAN_DEVICE", "").strip()
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _TensorType(type):
    """Metaclass: calling the class makes a tensor; the class name is the legacy type string.

    ``Tensor.type(cls)`` converts by a class's name, so a class called
    ``torch.cuda.FloatTensor`` makes ``imgs.type(FloatTensor)`` work unchanged.
    """

    def __call__(cls, *args):
        if len(args) == 1 and not isinstance(args[0], int):
            # data: a numpy array, a list, a tensor -> a copy with our dtype on our device
            return torch.as_tensor(args[0], dtype=cls.dtype, device=cls.device).clone()
        return torch.empty(*args, dtype=cls.dtype, device=cls.device)  # sizes, like the legacy ctor

    def __instancecheck__(cls, obj):
        return isinstance(obj, torch.Tensor) and obj.dtype == cls.dtype and obj.device.type == cls.device.type

    def __repr__(cls):
        return f"<tensor factory {cls.__name__}: dtype={cls.dtype}, device={cls.device}>"


def tensor_types(device):
    """(FloatTensor, LongTensor) factories for `device` (a torch.device or string)."""
    device = torch.device(device)
    prefix = "torch.cuda." if device.type == "cuda" else "torch."
    float_type = _TensorType(prefix + "FloatTensor", (), {"dtype": torch.float32, "device": device})
    long_type = _TensorType(prefix + "LongTensor", (), {"dtype": torch.int64, "device": device})
    return float_type, long_type


def module_device(module, default=None):
    """The device of a module's first parameter or buffer; `default` (or the CPU) when it has none."""
    if isinstance(module, torch.nn.Module):
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            return tensor.device
    return torch.device(default if default is not None else "cpu")


@contextlib.contextmanager
def evaluating(module):
    """`module` in eval() mode under torch.no_grad(); every submodule's train/eval mode is restored after."""
    modes = [(m, m.training) for m in module.modules()] if isinstance(module, torch.nn.Module) else []
    with torch.no_grad():
        if modes:
            module.eval()
        try:
            yield module
        finally:
            for m, training in modes:
                m.training = training


device = pick_device()
cuda = device.type == "cuda"
FloatTensor, LongTensor = tensor_types(device)
