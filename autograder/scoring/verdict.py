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
- Two tests run at a time (judge() says how); their printed lines are kept per thread.
"""
import collections
import contextlib
import io
import sys
import threading
import time
from dataclasses import dataclass, field

from cgan_lib.checks import Remote, TestFailed

from autograder.isolation.probe import GraderError, ProbeFailed

OUTPUT_KEPT = 20_000  # characters of a test's printed output kept in its verdict
_printing_to = threading.local()  # .stream: where this thread's prints go while it runs tests


class _PerThreadStdout:
    """sys.stdout while tests run: a thread that runs tests prints into its own buffer, any other thread
    (nbgrader running the notebook beside the tests) where it printed before."""

    def __init__(self, before):
        self.before = before

    def write(self, text):
        return (getattr(_printing_to, "stream", None) or self.before).write(text)

    def flush(self):
        (getattr(_printing_to, "stream", None) or self.before).flush()

    def __getattr__(self, name):
        return getattr(self.before, name)


@contextlib.contextmanager
def _prints_into(stream):
    """This thread's prints go to `stream` (contextlib.redirect_stdout would take every thread's)."""
    if not isinstance(sys.stdout, _PerThreadStdout):
        sys.stdout = _PerThreadStdout(sys.stdout)
    _printing_to.stream = stream
    try:
        yield
    finally:
        _printing_to.stream = None


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

    def __init__(self, start_probe, prelude, student_cells, judgement, load_timeout, process=None, report_load=True):
        self.start_probe, self.prelude, self.cells = start_probe, prelude, student_cells
        self.judgement, self.load_timeout = judgement, load_timeout
        self.process, self.deadline = process, None
        self.report_load = report_load  # what loading found goes to problems.csv once, not again after a restart

    def ensure(self):
        if self.process is not None and self.process.alive:
            return
        self.close()
        self.process = self.start_probe()
        try:
            report = self.process.load(self.prelude, self.cells, self.load_timeout)
        except ProbeFailed as failure:  # no code of the student's runs while loading: the grader's problem
            raise GraderError(f"the probe process could not load the notebook ({failure}):\n{self.process.log()}")
        if self.report_load:
            self.report_load = False
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
            self.process.close()
            self.judgement.log.append(self.process.log())
            self.process = None


def judge(test_cells, prelude, student_cells, answers, start_probe, cell_timeout, environment=None):
    """Verdicts for `test_cells` [(grade_id, trusted source)].

    `prelude`: [(grade_id, trusted source)] run before the tests, here and in the probe;
    `student_cells`: [(label, source, graded)] from the submission; `answers`: the names
    the tests use; `start_probe()`: a new, not yet loaded ProbeProcess.

    Two tests run at a time, in two lanes: once the probe process has loaded the notebook, a
    twin of it (ProbeProcess.clone) serves the second lane. The lanes take the tests from
    both ends of the notebook, so its last test, the end-to-end one that takes longest (the
    training run), starts at once instead of after all the others. Each test's verdict is
    the same as if it ran alone: every test gets a fresh child of a loaded process and a
    fresh copy of the prelude's names, and a test during which the whole process ended
    (which the other lane's test may have caused) is judged again, alone, on a new one.
    """
    judgement = Judgement()
    trusted = {"__name__": "__verdict__"}
    with _prints_into(io.StringIO()):
        for grade_id, source in prelude:
            exec(compile(source, f"<{grade_id}>", "exec"), trusted)
    first = _Probe(start_probe, prelude, student_cells, judgement, cell_timeout)
    lanes, results = [first], {}  # results: grade_id -> (Verdict, its problems, did the whole process end?)
    try:
        first.ensure()
        waiting = collections.deque(test_cells)
        if len(test_cells) > 1:
            try:
                twin = first.process.clone()
            except ProbeFailed:
                twin = None  # the second lane starts a process of its own
            lanes.append(_Probe(start_probe, prelude, student_cells, judgement, cell_timeout, process=twin,
                                report_load=False))
            second = threading.Thread(target=_lane, args=(lanes[1], waiting, "back", trusted, answers, cell_timeout,
                                                           results), name="verdicts, second lane", daemon=True)
            second.start()
        _lane(first, waiting, "front", trusted, answers, cell_timeout, results)
        if len(lanes) > 1:
            second.join()
        _raise_grader_error(results)
        again = [(g, source) for g, source in test_cells if results[g][2]]
        if again and len(lanes) > 1:
            alone = _Probe(start_probe, prelude, student_cells, judgement, cell_timeout, report_load=False)
            lanes.append(alone)
            _lane(alone, collections.deque(again), "front", trusted, answers, cell_timeout, results)
            _raise_grader_error(results)
    finally:
        for lane in reversed(lanes):
            lane.close()
    for grade_id, _ in test_cells:  # in the notebook's order, whichever lane ran them
        judgement.verdicts[grade_id], problems, _ = results[grade_id]
        judgement.problems += problems
    return judgement


def _raise_grader_error(results):
    for result in results.values():
        if isinstance(result, GraderError):
            raise result  # not the student's doing: no score at all, rather than a wrong one


def _lane(probe, waiting, end, trusted, answers, cell_timeout, results):
    """Judge tests from `end` of `waiting` until none is left (or a grader error stops both lanes)."""
    while True:
        try:
            grade_id, source = waiting.popleft() if end == "front" else waiting.pop()
        except IndexError:
            return
        probe.deadline = time.monotonic() + cell_timeout
        namespace = dict(trusted)
        namespace.update({name: Remote(name, probe) for name in answers})
        problems = []
        try:
            verdict = _run_test(grade_id, source, namespace, probe, problems, cell_timeout)
        except GraderError as error:
            results[grade_id] = error
            waiting.clear()
            return
        process_ended = not verdict.passed and probe.process is not None and not probe.process.alive
        results[grade_id] = verdict, problems, process_ended


def _run_test(grade_id, source, namespace, probe, problems, cell_timeout):
    printed, start = io.StringIO(), time.monotonic()
    message = ""
    try:
        with _prints_into(printed):
            exec(compile(source, f"<{grade_id}>", "exec"), namespace)
    except AssertionError as failure:  # TestFailed, or a plain assert of a test
        message = str(failure) or "an assertion of the test failed"
    except ProbeFailed as failure:
        if failure.kind == "timeout":
            message = (f"The test did not finish within {cell_timeout} s: your code took too long (an endless "
                       f"loop, or a very slow step).")
            problems.append(("test timeout", f"test {grade_id!r} ran past {cell_timeout} s: failed"))
        elif failure.kind == "died":
            message = f"Your code stopped the process that runs the tests: {failure}."
            problems.append(("test process died", f"test {grade_id!r}: {failure}: failed"))
        else:
            message = f"Your code spoiled the test's results ({failure})."
            problems.append(("test reply spoiled", f"test {grade_id!r}: {failure}: failed"))
    except GraderError:
        raise  # not the student's doing: no score at all, rather than a wrong one
    except Exception as error:  # the test could not read what the student's code returned
        message = (f"The test could not check your code's results: {type(error).__name__}: {error}. "
                   f"Make sure your functions return what the template asks for.")
    output = printed.getvalue()[:OUTPUT_KEPT]
    return Verdict(grade_id, not message, output, message, round(time.monotonic() - start, 3))
