"""Save and load training checkpoints, safely, with error messages that say what to do.

A checkpoint is one ``torch.save``-d dict::

    {"format": "cgan_lib-checkpoint-v1",
     "generator": G.state_dict(),
     "discriminator": D.state_dict(),        # only the parts you passed
     "optimizer_G": ..., "optimizer_D": ...,
     "epoch": 20, "history": [(d_loss, g_loss), ...], **extra}

Each training run writes its checkpoints into a folder of its own,
``new_run_folder("checkpoints", "quick")`` -> ``checkpoints/2026-11-22_104512_quick/``,
so a comparison of "first and last checkpoint" (``run_checkpoints(folder)``) never
mixes two runs.

``save_checkpoint`` writes it to a temporary file next to the target and
renames it into place, so a crash or Ctrl-C half way leaves the previous
checkpoint intact. ``load_checkpoint`` reads it with ``weights_only=True``
(no arbitrary code runs from the file) and also accepts the seeds' bare
generator files, ``torch.save(generator.state_dict(), "./cgan_generator %d.pth" % epoch)``.
"""
import os
import re
import secrets
import time
from pathlib import Path

import torch

FORMAT = "cgan_lib-checkpoint-v1"
PARTS = ("generator", "discriminator", "optimizer_G", "optimizer_D")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, or does not fit the model. The message says what to do."""


def _number(x):
    return x.item() if hasattr(x, "item") else x


def checkpoint_path(folder, epoch):
    """``folder/cgan_generator_epoch020.pth``: zero-padded so that sorting by name sorts by epoch."""
    return Path(folder) / f"cgan_generator_epoch{int(epoch):03d}.pth"


def new_run_folder(root="checkpoints", label=None):
    """A new, empty folder for one run's checkpoints: ``root/<date>_<time>[_label]``, created now.

    Two runs started in the same second get ``..._2``, ``..._3``: a folder is never shared.
    """
    if label is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", str(label)):
        raise ValueError(f"a run label is letters, digits, '_', '.' and '-', got {label!r}")
    base = Path(root) / (time.strftime("%Y-%m-%d_%H%M%S") + (f"_{label}" if label else ""))
    base.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        folder = base if number == 1 else base.with_name(f"{base.name}_{number}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder next to {base}: 999 of them exist")


def run_checkpoints(folder):
    """The checkpoint files of one run folder, in epoch order (empty when there are none)."""
    return sorted(Path(folder).glob("cgan_generator_epoch*.pth"))


def save_checkpoint(path, generator, discriminator=None, optimizer_G=None, optimizer_D=None,
                    epoch=None, history=None, **extra):
    """Write a checkpoint of whatever is passed to `path` atomically; return `path` as a Path.

    `history` is a list of (d_loss, g_loss) pairs; it is stored as Python floats.
    The `extra` values must be plain data (numbers, strings, lists, tuples, dicts,
    tensors) so that ``load_checkpoint`` can read them with ``weights_only=True``.
    """
    if "format" in extra:
        raise ValueError("'format' is reserved for the checkpoint format; give your value another name")
    path = Path(path)
    checkpoint = {"format": FORMAT, "generator": generator.state_dict()}
    for name, obj in (("discriminator", discriminator), ("optimizer_G", optimizer_G),
                      ("optimizer_D", optimizer_D)):
        if obj is not None:
            checkpoint[name] = obj.state_dict()
    if history is not None:  # plain floats, also from numpy scalars or tensors, so weights_only can read them
        history = [tuple(_number(x) for x in entry) for entry in history]
    checkpoint.update(epoch=epoch, history=history, **extra)

    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so os.replace is a rename within one file system (atomic).
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a half-written file behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def _missing_file_message(path):
    folder = path.parent
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint file. Pass the path of a .pth file inside it."
    if not folder.is_dir():
        return f"{path} does not exist, and neither does its folder {folder}/."
    present = sorted(p.name for p in folder.glob("*.pth"))
    if not present:
        return f"{path} does not exist, and {folder}/ holds no .pth files. Train and save a checkpoint first."
    shown = "".join(f"  {name}\n" for name in present[:20])
    more = f"  ... and {len(present) - 20} more\n" if len(present) > 20 else ""
    return (f"{path} does not exist. The .pth files in {folder}/ are:\n{shown}{more}"
            f"Check the file name (and the epoch number in it).")


def _read(path, map_location):
    """torch.load with the failures turned into CheckpointErrors."""
    if not path.is_file():
        raise CheckpointError(_missing_file_message(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if unsafe:  # a whole pickled object, e.g. torch.save(model), that weights_only refuses to run
            raise CheckpointError(
                f"{path} holds a Python object ({unsafe.group(1)}), not just tensors and plain data, "
                f"and is not loaded, for safety. If it was saved with torch.save(model), save "
                f"model.state_dict() or use save_checkpoint() instead, then load that.") from err
        text = str(err).strip()
        unpickler = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        reason = unpickler.group(1) if unpickler else text.split(". ")[0].split("\n")[0]
        raise CheckpointError(
            f"{path} could not be read as a checkpoint: it is truncated, corrupt, or not a PyTorch "
            f"file ({type(err).__name__}: {reason}). If a save was interrupted, use an earlier "
            f"checkpoint, or train again.") from err


def _as_checkpoint(path, data):
    """The file's contents as a checkpoint dict; a bare state_dict becomes {"generator": it}."""
    if isinstance(data, dict) and "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path} has format {data['format']!r}; this cgan_lib reads {FORMAT!r}.")
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"format": None, "generator": data, "epoch": None, "history": None}  # the seeds' files
    raise CheckpointError(
        f"{path} is a PyTorch file but not a checkpoint: it holds a {type(data).__name__}, not a "
        f"state_dict or a dict written by save_checkpoint().")


def _shape(t):
    return list(t.shape) if isinstance(t, torch.Tensor) else None


def _check_module(path, name, module, state):
    """Raise if `state` does not fit `module`: missing or unexpected keys, different shapes."""
    own = module.state_dict()
    problems = [f"{key}: file has shape {_shape(state[key])}, your model {_shape(own[key])}"
                for key in own if key in state and _shape(state[key]) != _shape(own[key])]
    problems += [f"{key}: in your model, not in the file" for key in own if key not in state]
    problems += [f"{key}: in the file, not in your model" for key in state if key not in own]
    if problems:
        listed = "".join(f"  {p}\n" for p in problems[:12])
        more = f"  ... and {len(problems) - 12} more\n" if len(problems) > 12 else ""
        raise CheckpointError(
            f"{path}: the {name} saved there does not fit your {type(module).__name__}; the "
            f"checkpoint was saved from a different architecture (layer sizes, latent_dim or "
            f"layers differ):\n{listed}{more}"
            f"Build the model exactly as it was when the checkpoint was saved, or use a checkpoint "
            f"saved from this model.")


def _check_optimizer(path, name, optimizer, state):
    groups = [len(g["params"]) for g in optimizer.param_groups]
    saved = [len(g["params"]) for g in state.get("param_groups", [])]
    if groups != saved:
        raise CheckpointError(
            f"{path}: the {name} state saved there is for parameter groups of sizes {saved}, your "
            f"optimizer has {groups}; it was made for a different model. Create the optimizer "
            f"from the model the checkpoint was saved from.")


def load_checkpoint(path, generator=None, discriminator=None, optimizer_G=None, optimizer_D=None,
                    map_location=None):
    """Load the states in `path` into the objects passed; return the checkpoint dict.

    Everything is checked before anything is loaded, so on an error the objects
    passed are left as they were. `map_location` defaults to the device of the
    generator's parameters if a generator is passed, else the CPU.
    """
    path = Path(path)
    if map_location is None:
        param = next(generator.parameters(), None) if generator is not None else None
        map_location = param.device if param is not None else torch.device("cpu")
    checkpoint = _as_checkpoint(path, _read(path, map_location))

    wanted = {"generator": generator, "discriminator": discriminator,
              "optimizer_G": optimizer_G, "optimizer_D": optimizer_D}
    wanted = {name: obj for name, obj in wanted.items() if obj is not None}
    for name, obj in wanted.items():
        if checkpoint.get(name) is None:
            held = ", ".join(k for k in PARTS if checkpoint.get(k) is not None)
            raise CheckpointError(
                f"{path} holds no {name} state (it holds: {held}). Load it without {name}=..., or "
                f"save checkpoints with save_checkpoint(..., {name}=...).")
        if isinstance(obj, torch.nn.Module):
            _check_module(path, name, obj, checkpoint[name])
        else:
            _check_optimizer(path, name, obj, checkpoint[name])
    for name, obj in wanted.items():
        obj.load_state_dict(checkpoint[name])
    return checkpoint
