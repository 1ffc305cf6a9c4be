"""The verdict: every test cell's result, decided in the grader from data, never in a process
that ran student code.

    verdicts = judge(test_cells, prelude, student_cells, answers, start_probe, cell_timeout)

- The student's cells are loaded, definitions only, into a sandboxed probe process
  (cgan_lib.checks.server), which has never seen a test.
- Each test cell's trusted source (from the gradebook: hidden tests included) runs here,
  in the grader, after the assignment's prelude cells, with the student's names
  (`answers`) bound to handles on that process. The checks send it inputs and judge the
  data it returns; hidden test code and expected values never leave the grader.
- A test passes when its code returns, and fails with the message of what it raised.
  A probe that dies or runs past the cell's time fails that test; the next test starts a
  fresh probe process.
"""
import contextlib
import io
import time
from dataclasses import dataclass, field

from cgan_lib.checks import Remote, TestFailed

from autograder.isolation.probe import GraderError, ProbeFailed

OUTPUT_KEPT = 20_000  # characters of a test's printed output kept in its verdict


@dataclass
class Verdict:
    grade_id: str
    passed: bool
    output: str           # what the test printed (the check's ✔ lines)
    message: str = ""     # why it failed: what was expected, what came out, where to look
    seconds: float = 0.0


@dataclass
class Judgement:
    verdicts: dict = field(default_factory=dict)   # grade_id -> Verdict
    problems: list = field(default_factory=list)   # (kind, detail) for problems.csv
    log: list = field(default_factory=list)        # the probe processes' output, for the instructor's log


class _Probe:
    """The probe process the tests talk to, started (again) on demand; a test's requests end at `deadline`.

    It is the channel of the tests' Remote handles: `call` runs one probe in a fresh child of
    the process, `session` several that share state (a training run and its checkpoints).
    """

    def __init__(self, start_probe, prelude, student_cells, judgement, load_timeout):
        self.start_probe, self.prelude, self.cells = start_probe, prelude, student_cells
        self.judgement, self.load_timeout = judgement, load_timeout
        self.process, self.deadline, self.loads = None, None, 0

    def ensure(self):
        if self.process is not None and self.process.alive:
            return
        self.close()
        self.process = self.start_probe()
        try:
            report = self.process.load(self.prelude, self.cells, self.load_timeout)
        except ProbeFailed as failure:  # no code of the student's runs while loading: the grader's problem
            raise GraderError(f"the probe process could not load the notebook ({failure}):\n{self.process.log()}")
        self.loads += 1
        if self.loads == 1:  # what loading found, once (not again after a restart)
            for label, line, code, why in report.get("refused", []):
                self.judgement.problems.append(("not loaded for the tests", (
                    f"cell {label!r}, line {line}: `{code}` was not run for the tests: {why}. The tests load only "
                    f"imports, functions, classes and constants from the notebook")))
            for label, error in report.get("errors", []):
                self.judgement.problems.append(("error in a definition", (
                    f"cell {label!r}: loading its definitions raised {error.get('type')}: "
                    f"{str(error.get('message'))[:200]}")))

    def call(self, op, target, request):
        with self.session(target) as call:
            return call(op, **request)

    @contextlib.contextmanager
    def session(self, target):
        self.ensure()
        with self.process.session(self.deadline) as session:
            def call(op, **request):
                reply = session.call(op, target, request)
                if isinstance(reply, dict) and "missing" in reply:
                    raise TestFailed(f"`{target}` is not defined in your notebook: keep the name the template gives "
                                     f"it, and check that its cell runs without errors.")
                return reply
            yield call

    def close(self):
        if self.process is not None:
            self.judgement.log.append(self.process.log())
            self.process.close()
            self.process = None


def judge(test_cells, prelude, student_cells, answers, start_probe, cell_timeout, environment=None):
    """Verdicts for `test_cells` [(grade_id, trusted source)].

    `prelude`: [(grade_id, trusted source)] run before the tests, here and in the probe;
    `student_cells`: [(label, source, graded)] from the submission; `answers`: the names
    the tests use; `start_probe()`: a new, not yet loaded ProbeProcess.
    """
    judgement = Judgement()
    trusted = {"__name__": "__verdict__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for grade_id, source in prelude:
            exec(compile(source, f"<{grade_id}>", "exec"), trusted)
    probe = _Probe(start_probe, prelude, student_cells, judgement, cell_timeout)
    try:
        for grade_id, source in test_cells:
            probe.deadline = time.monotonic() + cell_timeout
            namespace = dict(trusted)
            namespace.update({name: Remote(name, probe) for name in answers})
            judgement.verdicts[grade_id] = _run_test(grade_id, source, namespace, probe, judgement, cell_timeout)
    finally:
        probe.close()
    return judgement


def _run_test(grade_id, source, namespace, probe, judgement, cell_timeout):
    printed, start = io.StringIO(), time.monotonic()
    message = ""
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(source, f"<{grade_id}>", "exec"), namespace)
    except AssertionError as failure:  # TestFailed, or a plain assert of a test
        message = str(failure) or "an assertion of the test failed"
    except ProbeFailed as failure:
        if failure.kind == "timeout":
            message = (f"The test did not finish within {cell_timeout} s: your code took too long (an endless "
                       f"loop, or a very slow step).")
            judgement.problems.append(("test timeout", f"test {grade_id!r} ran past {cell_timeout} s: failed"))
        elif failure.kind == "died":
            message = f"Your code stopped the process that runs the tests: {failure}."
            judgement.problems.append(("test process died", f"test {grade_id!r}: {failure}: failed"))
        else:
            message = f"Your code spoiled the test's results ({failure})."
            judgement.problems.append(("test reply spoiled", f"test {grade_id!r}: {failure}: failed"))
    except GraderError:
        raise  # not the student's doing: no score at all, rather than a wrong one
    except Exception as error:  # the test could not read what the student's code returned
        message = (f"The test could not check your code's results: {type(error).__name__}: {error}. "
                   f"Make sure your functions return what the template asks for.")
    output = printed.getvalue()[:OUTPUT_KEPT]
    return Verdict(grade_id, not message, output, message, round(time.monotonic() - start, 3))
