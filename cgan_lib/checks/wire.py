"""The probe's wire format: plain data and tensors, never pickles.

A message is a JSON header followed by the raw bytes of its tensors:

    8 bytes   length of the header (big-endian)
    8 bytes   length of the tensor data
    header    UTF-8 JSON: the value, with every tensor replaced by {"__tensor__": i}, and a
              table [[dtype, shape, offset, nbytes], ...] of the tensors
    data      the tensors' bytes, one after the other

Values are None, bools, ints, floats (NaN and infinities included), strings, lists, tuples
(sent as lists), dicts with string keys, and CPU tensors of the dtypes in DTYPES. Decoding
checks every length, dtype and shape against the bytes that came, so a message written by
anyone, a hostile student's code included, decodes to such data or fails with WireError.
"""
import json
import struct

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
          "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
MAX_MESSAGE_BYTES = 1 << 30   # a reply of the training-run probe is tens of MB; nothing needs a GB
MAX_HEADER_BYTES = 64 << 20
MAX_DEPTH = 64
LENGTHS = struct.Struct(">QQ")


class WireError(ValueError):
    """A message that is not well formed."""


def encode(value):
    """The bytes of one message holding `value`."""
    tensors = []

    def plain(v, depth=0):
        if depth > MAX_DEPTH:
            raise WireError(f"value nested deeper than {MAX_DEPTH} levels")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, torch.Tensor):
            tensors.append(v.detach().to("cpu").contiguous())
            return {"__tensor__": len(tensors) - 1}
        if isinstance(v, (list, tuple)):
            return [plain(x, depth + 1) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v) or "__tensor__" in v:
                raise WireError("dict keys must be strings other than '__tensor__'")
            return {k: plain(x, depth + 1) for k, x in v.items()}
        raise WireError(f"cannot send a {type(v).__name__}")

    body = plain(value)
    table, chunks, offset = [], [], 0
    for t in tensors:
        if t.dtype not in NAMES:
            raise WireError(f"cannot send tensors of dtype {t.dtype}")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        table.append([NAMES[t.dtype], list(t.shape), offset, len(data)])
        chunks.append(data)
        offset += len(data)
    header = json.dumps({"value": body, "tensors": table}, allow_nan=True).encode()
    return LENGTHS.pack(len(header), offset) + header + b"".join(chunks)


def decode(message):
    """The value of one message (the bytes `encode` made, or anyone else's)."""
    if len(message) < LENGTHS.size:
        raise WireError("message shorter than its length prefix")
    header_len, data_len = LENGTHS.unpack_from(message)
    if header_len > MAX_HEADER_BYTES or LENGTHS.size + header_len + data_len != len(message):
        raise WireError("message lengths do not add up")
    try:
        header = json.loads(message[LENGTHS.size:LENGTHS.size + header_len])
        body, table = header["value"], header["tensors"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise WireError(f"unreadable header: {error}") from None
    data = memoryview(message)[LENGTHS.size + header_len:]
    tensors = [_tensor(entry, data) for entry in _as_list(table)]

    def value(v, depth=0):
        if depth > MAX_DEPTH:
            raise WireError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, list):
            return [value(x, depth + 1) for x in v]
        if isinstance(v, dict):
            if set(v) == {"__tensor__"}:
                index = v["__tensor__"]
                if not isinstance(index, int) or not 0 <= index < len(tensors):
                    raise WireError("tensor reference out of range")
                return tensors[index]
            return {k: value(x, depth + 1) for k, x in v.items()}
        return v

    return value(body)


def _as_list(v):
    if not isinstance(v, list):
        raise WireError("tensor table is not a list")
    return v


def _tensor(entry, data):
    try:
        name, shape, offset, nbytes = entry
        dtype = DTYPES[name]
        shape = [int(s) for s in shape]
        offset, nbytes = int(offset), int(nbytes)
    except (ValueError, TypeError, KeyError) as error:
        raise WireError(f"bad tensor entry {str(entry)[:80]}: {error}") from None
    count = 1
    for s in shape:
        if s < 0:
            raise WireError("negative tensor dimension")
        count *= s
    itemsize = torch.empty((), dtype=dtype).element_size()
    if count * itemsize != nbytes or offset < 0 or offset + nbytes > len(data):
        raise WireError(f"tensor of shape {shape} and dtype {name} does not fit its {nbytes} bytes")
    raw = bytearray(data[offset:offset + nbytes])
    if not raw:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)


def write_message(stream, value):
    """Write one message to a binary stream (a pipe)."""
    stream.write(encode(value))
    stream.flush()


def read_message(stream, max_bytes=MAX_MESSAGE_BYTES):
    """Read one message from a binary stream; None at a clean end of stream."""
    prefix = _read_exactly(stream, LENGTHS.size, allow_eof=True)
    if prefix is None:
        return None
    header_len, data_len = LENGTHS.unpack(prefix)
    if header_len > MAX_HEADER_BYTES or header_len + data_len > max_bytes:
        raise WireError(f"message of {header_len + data_len:,} bytes is over the limit of {max_bytes:,}")
    return decode(prefix + _read_exactly(stream, header_len + data_len))


def _read_exactly(stream, n, allow_eof=False):
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if allow_eof and remaining == n:
                return None
            raise WireError(f"stream ended {remaining} bytes before the end of a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
