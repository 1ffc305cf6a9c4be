"""The plumbing under cgan_lib.checks: the wire format hostile bytes must not get through, and the
loading policy that keeps every line of a notebook from running while its definitions load."""
import ast
import json
import math
import struct
import threading

import pytest
import torch

from cgan_lib.checks import wire
from cgan_lib.checks.definitions import own_names, split, transform
from cgan_lib.checks.reference import AdamReplica, ReferenceDiscriminator, ReferenceGenerator, reference_models


# --------------------------------------------------------------------------- wire
def test_values_and_tensors_round_trip():
    value = {"a": [1, 2.5, None, True, "x", float("inf")],
             "t": [torch.arange(6, dtype=torch.int64).reshape(2, 3), torch.randn(4, 1, 2), torch.zeros(0, 5),
                   torch.tensor(3.0), torch.tensor([True, False]), torch.randn(3).to(torch.bfloat16)],
             "nested": {"deeper": [(1, 2), {"k": torch.ones(2, 2)}]}}
    back = wire.decode(wire.encode(value))
    assert back["a"][:5] == [1, 2.5, None, True, "x"] and math.isinf(back["a"][5])
    for sent, got in zip(value["t"], back["t"]):
        assert got.dtype == sent.dtype and torch.equal(got, sent)
    assert back["nested"]["deeper"][0] == [1, 2] and torch.equal(back["nested"]["deeper"][1]["k"], torch.ones(2, 2))


@pytest.mark.parametrize("unsendable", [object(), {1: 2}, {"__tensor__": 0}, torch.zeros(2, dtype=torch.complex64)])
def test_what_cannot_be_sent_is_refused(unsendable):
    with pytest.raises(wire.WireError):
        wire.encode({"x": unsendable})


def forged(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack(">QQ", len(raw), len(data)) + raw + data


@pytest.mark.parametrize("message", [
    b"short",
    struct.pack(">QQ", 10, 0) + b"{}",                                                      # lengths do not add up
    forged({"value": 1}),                                                                   # no tensor table
    forged({"value": {"__tensor__": 0}, "tensors": []}),                                    # reference out of range
    forged({"value": {"__tensor__": 0}, "tensors": [["float32", [4], 0, 16]]}, b"x" * 8),  # tensor past the data
    forged({"value": {"__tensor__": 0}, "tensors": [["float32", [5], 0, 16]]}, b"x" * 16),  # shape and size differ
    forged({"value": {"__tensor__": 0}, "tensors": [["object", [1], 0, 8]]}, b"x" * 8),    # a dtype not allowed
    forged({"value": {"__tensor__": 0}, "tensors": [["float32", [-4], 0, 16]]}, b"x" * 16),  # negative dimension
    forged({"value": json.loads("[" * 80 + "1" + "]" * 80), "tensors": []}),                   # nested too deep
])
def test_malformed_messages_are_refused_not_obeyed(message):
    with pytest.raises(wire.WireError):
        wire.decode(message)


def test_a_message_over_the_size_limit_is_refused_before_it_is_read():
    import io
    stream = io.BytesIO(struct.pack(">QQ", 100, 10**12))
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.read_message(stream, max_bytes=10**6)


# --------------------------------------------------------------------------- loading definitions
def kept_and_left(source):
    code = transform(source)
    tree = ast.parse(code)
    module, left_out = split(tree, code, own_names([tree]))
    return [getattr(n, "name", type(n).__name__) for n in module.body], [text for _, text, _ in left_out]


def test_definitions_that_run_no_code_are_kept():
    kept, left = kept_and_left('''
import torch
from torch import nn
"""a docstring"""
LATENT = 100
img_dim = int(np.prod((1, 28, 28)))
loss = nn.MSELoss()
device = torch.device("cpu")
class Generator(nn.Module):
    scale = 2.0
    def __init__(self, hidden=128, where=device):
        super().__init__()
    @torch.no_grad()
    def sample(self, n):
        return n
    @property
    def width(self):
        return 1
    @width.setter
    def width(self, value):
        pass
def weights_init_normal(m):
    if m.__class__.__name__.find("Conv") != -1:
        pass
''')
    assert left == [] and "Generator" in kept and "weights_init_normal" in kept


@pytest.mark.parametrize("line", [
    "print(Generator())",
    "G = Generator()",
    "torch.allclose = lambda *a, **k: True",
    "for i in range(3):\n    pass",
    "%time x = 1",
    "x = np.vectorize(helper)(1)",
    "x = torch.utils.cpp_extension.load_inline('x', '')",
    "class Meta(type):\n    pass\nclass H(metaclass=Meta):\n    pass",
    "class I:\n    def __init_subclass__(cls):\n        pass",
    "class J:\n    x = helper()",
    "@helper\ndef f():\n    pass",
    "def f(x=helper()):\n    pass",
    "def f(x: helper() = 1):\n    pass",
    "get_ipython().events.register('post_run_cell', print)",
])
def test_code_that_would_run_while_loading_is_left_out(line):
    kept, left = kept_and_left("def helper(*args):\n    pass\n" + line)
    assert left, f"{line!r} was kept: {kept}"


# --------------------------------------------------------------------------- the judge's Adam
def test_the_adam_replica_takes_the_steps_torch_adam_takes():
    torch.manual_seed(0)
    weight = torch.randn(5, requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=1e-2, betas=(0.5, 0.999))
    replica = AdamReplica({"w": weight.detach()}, 1e-2, (0.5, 0.999))
    for _ in range(3):
        grad = torch.randn(5)
        weight.grad = grad.clone()
        optimizer.step()
        stepped = replica.step([grad])
    assert torch.equal(stepped["w"], weight.detach())
    state = optimizer.state[weight]
    resumed = AdamReplica({"w": weight.detach()}, 1e-2, (0.5, 0.999),
                          [{k: v.clone() for k, v in state.items()}])
    grad = torch.randn(5)
    weight.grad = grad.clone()
    optimizer.step()
    assert torch.equal(resumed.step([grad])["w"], weight.detach())
    assert float(state["step"]) == 4.0, "the replica must not touch the optimizer's state it was given"


# --------------------------------------------------------------------------- the reference networks
@pytest.mark.parametrize("settings", [{"seed": 0}, {"seed": 3, "batch_norm": True},
                                      {"seed": 7, "hidden": 64, "label_dim": 10, "latent_dim": 20}])
def test_reference_networks_are_torchs_seeded_ones_drawn_without_the_global_generator(settings):
    """The probe process and the grader build them from the same seed and must get the same numbers,
    while another thread of the grader draws from torch's global generator."""
    arguments = {"latent_dim": 100, "n_classes": 10, "label_dim": 50, "hidden": 128, "batch_norm": False, **settings}
    torch.manual_seed(arguments["seed"])  # how torch's own constructors draw them
    expected = (ReferenceGenerator(arguments["latent_dim"], arguments["n_classes"], arguments["label_dim"],
                                   arguments["hidden"], arguments["batch_norm"]),
                ReferenceDiscriminator(arguments["n_classes"], arguments["label_dim"], arguments["hidden"]))
    stop, drawn = threading.Event(), []
    drawer = threading.Thread(target=lambda: [drawn.append(torch.rand(1)) for _ in iter(stop.is_set, True)])
    drawer.start()
    try:
        for _ in range(20):
            built = reference_models(**arguments)
            for made, wanted in zip(built, expected):
                assert made.state_dict().keys() == wanted.state_dict().keys()
                assert all(torch.equal(made.state_dict()[k], v) for k, v in wanted.state_dict().items())
    finally:
        stop.set()
        drawer.join()
    assert drawn, "the other thread drew nothing: the test tested nothing"
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    reference_models(**arguments)
    assert torch.equal(torch.random.get_rng_state(), state), "reference_models drew from the global generator"
