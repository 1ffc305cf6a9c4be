"""What every check shares: the failure it raises, and how it reaches the student's code.

`probe(op, target, **request)` runs a probe (cgan_lib.checks.probes) on `target`:

- in the notebook `target` is the student's class or function, and the probe runs right
  here; its result still goes through the wire format, so that the judge sees exactly the
  data it sees when grading;
- when the lab is graded, `target` is a `Remote`: a name defined in the student's
  notebook, living in a sandboxed process of its own. The request goes there, data comes
  back, and the judge (this same code) decides in the grader, where student code never runs.
"""
import contextlib
import traceback

from cgan_lib.checks import probes, wire


class TestFailed(AssertionError):
    """A check failed; the message says what was expected, what came out and where to look.

    In Jupyter it shows as the message alone, after the student's own frames when their
    code raised (no frames of cgan_lib: the message says what they mean).
    """

    __test__ = False  # not a pytest test class

    def _render_traceback_(self):
        lines = []
        cause = self.__cause__
        if cause is not None and cause.__traceback__ is not None:
            frames = [f for f in traceback.extract_tb(cause.__traceback__)
                      if not f.filename.startswith(probes.LIBRARY_DIRS + (probes.CGAN_LIB_DIR,))]
            if frames:
                lines.append("Your code raised this error during the test:")
                lines += [line.rstrip("\n") for line in traceback.format_list(frames)]
                lines.append(f"{type(cause).__name__}: {cause}")
                lines.append("")
        lines.append(f"\x1b[0;31mTestFailed\x1b[0m: {self}")
        return lines


class Remote:
    """A name defined in the student's notebook, in the grader's sandboxed probe process."""

    def __init__(self, name, channel):
        self.name, self.channel = name, channel

    def __repr__(self):
        return f"<{self.name} in the sandboxed probe process>"


def probe(op, target, **request):
    """Run probe `op` on `target` (local, or a Remote) with `request`; its data, as the wire carries it."""
    if isinstance(target, Remote):
        return target.channel.call(op, target.name, request)
    result = probes.OPS[op](target, **request)
    exceptions = []
    result = _without_exceptions(result, exceptions)
    data = wire.decode(wire.encode(result))
    if exceptions and isinstance(data, dict):
        data["_exceptions"] = exceptions  # local runs only: the original exception, for the traceback
    return data


@contextlib.contextmanager
def probe_session(target):
    """`call(op, **request)` for several probes that share state (a training run and its checkpoints).

    Remotely, one process of the grader's answers them all; here, this kernel does.
    """
    if isinstance(target, Remote):
        with target.channel.session(target.name) as call:
            yield call
    else:
        yield lambda op, **request: probe(op, target, **request)


def _without_exceptions(value, found):
    if isinstance(value, dict):
        if "exception" in value and isinstance(value["exception"], BaseException):
            found.append(value["exception"])
        return {k: _without_exceptions(v, found) for k, v in value.items() if k != "exception"}
    if isinstance(value, list):
        return [_without_exceptions(v, found) for v in value]
    return value


def fail(message, data=None):
    """Raise TestFailed(message), chained to the student's exception when the probe ran here."""
    cause = (data or {}).get("_exceptions", [None])[0] if isinstance(data, dict) else None
    raise TestFailed(message) from cause


def code_error(error, doing):
    """A message for an exception the student's code raised while `doing` something."""
    where = error.get("where") or []
    place = ""
    if where:
        filename, line, code = where[-1]
        place = f"\n  at line {line} of your code" + (f": {code}" if code else "")
    return f"{doing} raised {error.get('type', 'an error')}: {error.get('message', '')}{place}"


def ok(message):
    """Print what passed, the same way in the notebook and in the grader's verdict."""
    print(f"\u2714 {message}")
