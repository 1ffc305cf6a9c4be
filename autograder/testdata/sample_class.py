"""The bundled sample class: correct, buggy and hostile submissions of the CGAN assignment.

    python -m autograder.testdata.sample_class out/sample_class     # write one folder per student

Each case is built from the released notebook (what students get) and the solution, so
the class follows the assignment when it changes. CASES records, for each student, the
test cells that must score 0 and the problems.csv kinds the grader must report;
tests/test_pipeline.py grades the class through the CLI and checks all of it.
"""
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.config import REPO, Limits
from autograder.testdata import attacks
from autograder.testdata.variants import BUGS, CORRECT, apply

RELEASE = REPO / "assignments" / "cgan" / "cgan.ipynb"
SOLUTION = REPO / "solutions" / "cgan" / "cgan.ipynb"
TESTS = ["test_generator", "test_generator_hidden", "test_discriminator", "test_discriminator_hidden",
         "test_train_step", "test_train_step_hidden", "test_generate_latent_points",
         "test_generate_latent_points_hidden", "test_training_run"]
# Limits the sample class is graded with: short enough for its slow cases to cost minutes, not hours,
# and a memory cap that the memory attacks reach without taking most of a laptop's memory.
LIMITS = Limits(cell_timeout=60, notebook_timeout=120, memory_gb=6)


@dataclass
class Case:
    student: str
    build: object                                   # () -> notebook, or bytes for a broken file
    fails: set = field(default_factory=set)         # test cells that score 0 ("all": every one)
    problems: set = field(default_factory=set)      # problems.csv kinds expected for this student
    layout: str = "flat"                            # flat: <student>/cgan.ipynb; nested: <student>/cgan/cgan.ipynb;
                                                    # symlink: <student>/cgan.ipynb is a link to the solution
    why: str = ""
    sandbox_only: bool = False                      # an attack only the sandbox stops: not graded without it
    also: set = field(default_factory=set)          # problems.csv kinds it may report besides (timing-dependent)


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solved_notebook(solution_path, release_path, edits=None, apply_edits=apply):
    """The release at `release_path` as a student who solved everything hands it in: each answer cell holds the
    solution's source with `edits` applied (by `apply_edits`, to the source with its BEGIN/END SOLUTION markers),
    the markers turned into the release's START/END CODE HERE (code) or dropped (written answers)."""
    solution = {grade_id(c): c.source for c in nbformat.read(solution_path, as_version=4).cells if grade_id(c)}
    notebook = nbformat.read(release_path, as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            source = apply_edits(solution[meta["grade_id"]], (edits or {}).get(meta["grade_id"], []))
            if cell.cell_type == "code":
                source = source.replace("### BEGIN SOLUTION", "### START CODE HERE").replace("### END SOLUTION", "### END CODE HERE")
            else:
                source = source.replace("### BEGIN SOLUTION\n", "").replace("\n### END SOLUTION", "")
            cell.source = source
    return notebook


def solved(edits=None):
    """The released cgan notebook as a student who solved everything hands it in, `edits` applied to their cells."""
    return solved_notebook(SOLUTION, RELEASE, edits)


def cell_index(notebook, wanted):
    return next(i for i, c in enumerate(notebook.cells) if grade_id(c) == wanted)


def with_cell(source, after, edits=None):
    """A solved notebook with an extra code cell (no nbgrader metadata) after cell `after`."""
    def build():
        notebook = solved(edits)
        notebook.cells.insert(cell_index(notebook, after) + 1, nbformat.v4.new_code_cell(source))
        return notebook
    return build


def empty_with_cell(source, after="imports"):
    """The untouched release (every answer empty) with an extra code cell after cell `after`."""
    def build():
        notebook = nbformat.read(RELEASE, as_version=4)
        notebook.cells.insert(cell_index(notebook, after) + 1, nbformat.v4.new_code_cell(source))
        return notebook
    return build


def changed(change, edits=None):
    def build():
        notebook = solved(edits)
        change(notebook)
        return notebook
    return build


def _delete(notebook, wanted):
    del notebook.cells[cell_index(notebook, wanted)]


def _set_source(notebook, wanted, source):
    notebook.cells[cell_index(notebook, wanted)].source = source


def _duplicate(notebook, wanted):
    at = cell_index(notebook, wanted)
    twin = copy.deepcopy(notebook.cells[at])
    twin["id"] = "copy-of-" + twin["id"]
    notebook.cells.insert(at + 1, twin)


def _to_markdown(notebook, wanted):
    at = cell_index(notebook, wanted)
    old = notebook.cells[at]
    notebook.cells[at] = nbformat.v4.new_markdown_cell(old.source, metadata=old.metadata, id=old.id)


def _reflag_test_as_answer(notebook, wanted):
    meta = notebook.cells[cell_index(notebook, wanted)].metadata["nbgrader"]
    meta.update(solution=True, locked=False)


def _strip_metadata(notebook, *wanted):
    for name in wanted:
        del notebook.cells[cell_index(notebook, name)].metadata["nbgrader"]


def _nbformat3():
    return nbformat.writes(nbformat.convert(solved(), 3)).encode()


def _bug(name):
    return BUGS[name][0]  # the edits of that bug


def _many(source, count):
    notebook = solved()
    at = cell_index(notebook, "generator") + 1
    for _ in range(count):
        notebook.cells.insert(at, nbformat.v4.new_code_cell(source))
    return notebook


def _always_equal():
    notebook = with_cell("class Anything(torch.Tensor):\n    def __eq__(self, other):\n        return True\n",
                         "imports")()
    cell = notebook.cells[cell_index(notebook, "generator")]
    cell.source = cell.source.replace("        return img", "        return img.as_subclass(Anything)")
    return notebook


def _partial_credit():
    """The untouched release with `sys.displayhook(points)` at the top of three answers, indented as the stub is."""
    notebook = nbformat.read(RELEASE, as_version=4)
    for name, points in (("generate_latent_points", 2.0), ("generator", 3.0), ("discriminator", 3.0)):
        cell = notebook.cells[cell_index(notebook, name)]
        indent = re.search(r"^([ \t]*)### START CODE HERE", cell.source, re.M).group(1)
        cell.source = cell.source.replace("### START CODE HERE", f"### START CODE HERE\n{indent}import sys\n"
                                          f"{indent}sys.displayhook({points})", 1)
    return notebook


# Attacks on the grader (issue: sandbox). Each prints a marker (LEAK:, WROTE:, NET:, RAISED:) for
# everything it got; the test asserts that no marker appears and that the class is graded right.
READ_ATTACK = """import pathlib, cgan_lib
here = pathlib.Path.cwd()
repo = pathlib.Path(cgan_lib.__file__).resolve().parent.parent
targets = [folder / name for folder in [here, *here.parents] for name in ("gradebook.db", "grades.csv")]
targets += [repo / "solutions" / "cgan" / "cgan.ipynb", repo / "autograder" / "sample_class.py",
            pathlib.Path.home() / ".bash_history", pathlib.Path("/root/.bash_history"), pathlib.Path("/etc/shadow")]
for folder in list(here.parents)[:6]:
    targets += folder.glob("submitted/*/*/*.ipynb")  # other students' notebooks
    targets += folder.glob("*/submitted/*/*/*.ipynb")
for target in targets:
    try:
        print("LEAK:", target, len(target.read_bytes()))
    except OSError:
        pass
print("read attack finished")"""
WRITE_ATTACK = """import pathlib, cgan_lib
here = pathlib.Path.cwd()
repo = pathlib.Path(cgan_lib.__file__).resolve().parent.parent
targets = [folder / name for folder in here.parents for name in ("gradebook.db", "grades.csv", "problems.csv")]
targets = [target for target in targets if target.exists()]  # the grader's files, if it can see any (a new
# file in the sandbox's private /tmp harms nobody)
targets += [repo / "solutions" / "cgan" / "cgan.ipynb", repo / "cgan_lib" / "__init__.py", here.parent / "planted.txt",
            pathlib.Path("/root/planted.txt"), pathlib.Path("/usr/planted.txt")]
for target in targets:
    try:
        with open(target, "ab") as f:
            f.write(b"PWNED")
        print("WROTE:", target)
    except OSError:
        pass
print("write attack finished")"""
NETWORK_ATTACK = """import socket
for host, port in [("127.0.0.1", {port}), ("10.0.2.2", 80), ("1.1.1.1", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("NET:", host, port)
    except OSError:
        pass
print("network attack finished")"""
FORK_BOMB = """import os
for _ in range(100_000):
    try:
        os.fork()
    except OSError:
        pass"""
LIMITS_ATTACK = """import os, resource
for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE"):
    limit = getattr(resource, name)
    try:
        resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print("RAISED:", name)
    except (ValueError, OSError):
        pass
try:
    os.setuid(0)
    print("RAISED: root")
except OSError:
    pass
big = torch.ones(4 * 1024**3)  # 16 GB"""
SLEEP_FOREVER = """import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader's interrupt does nothing
time.sleep(10**6)"""
FILL_THE_DISK = """import os
written = files = 0
try:
    with open("big.bin", "wb") as f:
        for _ in range(2048):
            f.write(b"x" * 1024**2)
            written += 1
except OSError as error:
    print("disk full after", written, "MB:", error.strerror)
os.makedirs("many", exist_ok=True)
try:
    for i in range(200_000):
        open(f"many/{i}", "w").close()
        files += 1
except OSError as error:
    print("no more files after", files, ":", error.strerror)
os.remove("big.bin")
import shutil
shutil.rmtree("many")"""
MEMFD = """import os
chunk, hoard = b"x" * 1024**2, []
for _ in range(48):  # 48 x 256 MB = 12 GB of memfd pages: past the address-space limit, which does not count them,
    fd = os.memfd_create("hoard")  # and each under the file-size limit, which would stop one big one
    for _ in range(256):
        os.write(fd, chunk)
    hoard.append(fd)"""
STDERR_FLOOD = """import os
chunk = b"E" * 1024**2
for _ in range(100):
    os.write(2, chunk)
print("wrote 100 MB to fd 2")"""
MARKERS = ("LEAK:", "WROTE:", "NET:", "RAISED:")

SLEEPS = "import time\ntime.sleep(50)  # each cell stays under the cell limit, the notebook does not"

KERNEL_ATTACKS = ["HOOK_INPUT_TRANSFORMER", "HOOK_SHOWTRACEBACK", "HOOK_RUN_CELL", "HOOK_EVENTS", "CODE_FROM_A_FILE",
                  "REBIND_IMPORTED", "PATCH_THROUGH_ALIAS", "CAPTURED", "READ_HISTORY", "FORGED_OUTPUT"]
PROBE_ATTACKS = ["FORGE_FROM_A_CLASS_BODY", "FORGE_FROM_A_DECORATOR", "FORGE_FROM_A_DEFAULT"]

CASES = [
    # correct work: every automatic point
    Case("correct_solution", solved, why="the instructor's solution, as a student would hand it in"),
    Case("correct_seed1_architecture", lambda: solved(CORRECT["correct: seed 1's architecture, its two shape bugs fixed"]),
         layout="nested", why="seed 1's MLP without BatchNorm, Dropout 0.3 and a Sigmoid in D"),
    Case("correct_one_discriminator_call", lambda: solved(
        CORRECT["correct train_step: one discriminator call on real and fake images together"]),
         why="D scores real and fake images in one call on torch.cat([real, fake.detach()])"),
    Case("warnings_and_stderr", lambda: solved({"generator": [(
        "        gen_input = torch.cat(", "        import sys\n"
        "        labels = torch.tensor(labels)  # PyTorch warns: copy-construct a tensor from a tensor\n"
        "        print('debug: forward', tuple(noise.shape), file=sys.stderr)\n        gen_input = torch.cat(")]}),
         why="a PyTorch UserWarning and debug prints to stderr cost nothing: only failed checks fail a test"),
    Case("probe_server_killed", lambda: solved({"discriminator": [(
        "        super().__init__()\n", "        super().__init__()\n" + attacks.KILL_THE_PROBE_SERVER)]}),
         fails={"test_discriminator", "test_discriminator_hidden"}, problems={"test process died"},
         why="D kills the process that answers the tests while another test runs beside it: that test is judged again"),
    Case("untouched_release", lambda: nbformat.read(RELEASE, as_version=4), fails={"all"},
         why="the notebook as released: 0, and grading finishes"),

    # common bugs (autograder/testdata/variants.py): the tests each must fail
    Case("bug_squeezed_discriminator", lambda: solved(_bug("discriminator output squeeze()d to (N,) (seed 1)")),
         fails={"test_discriminator", "test_discriminator_hidden"}, why="seed 1's bug: D returns (N,) instead of (N, 1)"),
    Case("bug_generator_28x28", lambda: solved(_bug("generator returns (N, 28, 28) (seed 1)")),
         fails={"test_generator", "test_generator_hidden"}, why="seed 1's bug: G returns (N, 28, 28)"),
    Case("bug_no_tanh", lambda: solved(_bug("no Tanh at the end of the generator")),
         fails={"test_generator_hidden"}, why="the generator's output is not bounded to [-1, 1]"),
    Case("bug_no_zero_grad", lambda: solved(_bug("no optimizer_G.zero_grad()")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"},
         why="gradients of G accumulate across steps"),
    Case("bug_swapped_targets", lambda: solved(_bug("swapped real/fake targets for D")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"}, why="D learns real->0, fake->1"),
    Case("bug_generator_toward_fake", lambda: solved(_bug("G trained toward fake")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"}, why="G's loss uses the `fake` target"),
    Case("bug_fakes_with_real_labels", lambda: solved(_bug("train_step: fakes scored with the real labels in D's update")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"},
         why="D scores the generated images with the real batch's labels"),
    Case("bug_generator_ignores_labels", lambda: solved(_bug("generator ignores its labels")),
         fails={"test_generator"}, why="the label embedding is multiplied by 0"),
    Case("bug_generator_draws_own_noise", lambda: solved(_bug("generator draws its own noise")),
         fails={"test_generator", "test_generator_hidden"}, why="forward() ignores `noise` and draws its own"),
    Case("bug_discriminator_ignores_labels", lambda: solved(_bug("discriminator ignores its labels")),
         fails={"test_discriminator"}, why="D cannot check the image matches its label"),
    Case("bug_uniform_noise", lambda: solved(_bug("uniform noise in generate_latent_points")),
         fails={"test_generate_latent_points", "test_generate_latent_points_hidden"}, why="torch.rand instead of torch.randn"),
    Case("bug_no_optimizer_step", lambda: solved(_bug("optimizer_G.step() missing")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"}, why="G is never updated"),

    # broken files: not gradable, 0, explained
    Case("invalid_json", lambda: nbformat.writes(solved()).encode()[:5000], fails={"all"},
         problems={"invalid JSON"}, why="a download cut short"),
    Case("not_a_notebook", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), fails={"all"}, problems={"not a notebook"},
         why="an image renamed .ipynb"),
    Case("empty_file", lambda: b"", fails={"all"}, problems={"empty file"}),
    Case("empty_notebook", lambda: nbformat.v4.new_notebook(), fails={"all"}, problems={"empty notebook"}),
    Case("old_nbformat3", _nbformat3, problems={"old notebook format"}, why="saved by an old Jupyter"),
    Case("link_to_the_solution", lambda: b"", layout="symlink", fails={"all"}, problems={"symlink refused"},
         why="a symlink to solutions/cgan/cgan.ipynb (a class collected with git can hold one): never followed"),

    # notebooks edited in ways the grader must undo
    Case("deleted_test_cell", changed(lambda nb: _delete(nb, "test_generator")), problems={"deleted cell"}),
    Case("edited_test_cell", changed(lambda nb: _set_source(nb, "test_train_step", "pass  # this test always passes"),
                                     _bug("no optimizer_G.zero_grad()")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"}, problems={"edited test"},
         why="a buggy train_step whose test was replaced by `pass`: the real test is put back and fails"),
    Case("edited_locked_cell", changed(lambda nb: _set_source(nb, "settings", "opt = None")),
         problems={"edited locked cell"}, layout="nested"),
    Case("duplicated_cell", changed(lambda nb: _duplicate(nb, "generator")), problems={"duplicated cell"},
         why="stock nbgrader aborts every later student's grading on this"),
    Case("changed_cell_type", changed(lambda nb: _to_markdown(nb, "test_discriminator")), problems={"cell type changed"}),
    Case("removed_metadata", changed(lambda nb: _strip_metadata(nb, "generator", "test_train_step")),
         problems={"metadata removed"}),
    Case("test_reflagged_as_answer", changed(lambda nb: _reflag_test_as_answer(nb, "test_generator")),
         problems={"metadata edited"}, why="stock nbgrader stops with NbGraderException on this"),

    # code that misbehaves while it runs: the tests run outside the notebook and keep their points
    Case("infinite_loop", with_cell("while True:\n    pass", "generator"), problems={"cell timeout"}),
    Case("sys_exit", with_cell("import sys\nsys.exit('I am done')", "discriminator"), problems={"exit"}),
    Case("os_exit", with_cell("import os\nos._exit(0)", "discriminator"), problems={"kernel died"},
         why="the notebook's run dies; the tests, which never ran in it, are scored"),
    Case("segfault", with_cell("import ctypes\nctypes.string_at(0)", "discriminator"),
         problems={"kernel died", "possible tampering"}),
    Case("output_flood", with_cell("for i in range(3_000_000):\n    print(i, 'spam')", "generator"),
         problems={"output flood"}, also={"output cut"}),
    Case("display_flood", with_cell("from IPython.display import HTML, display\nfor _ in range(10):\n"
                                    "    display(HTML('<b>x</b>' * 1_250_000))", "generator"),
         problems={"output cut"}, why="10 x 10 MB of display data: cut, and the feedback page stays small"),
    Case("memory_bomb", with_cell("big = torch.ones(4 * 1024**3)  # 16 GB", "generator"), problems={"out of memory"}),
    Case("too_slow", lambda: _many(SLEEPS, 3), problems={"too slow"}),

    # code that tries to fool the tests: exactly the honest score (the scan's notes are for the instructor)
    Case("monkeypatch_allclose", with_cell("torch.allclose = lambda *args, **kwargs: False", "imports",
                                           _bug("generator ignores its labels")),
         fails={"test_generator"}, problems={"possible tampering"},
         why="would make `assert not torch.allclose(a, b)` pass for a generator that ignores labels"),
    Case("redefined_test_helper", with_cell("check_train_step = lambda *args, **kwargs: None", "imports",
                                            _bug("no optimizer_G.zero_grad()")),
         fails={"test_train_step", "test_train_step_hidden", "test_training_run"}, problems={"possible tampering"}),
    Case("always_equal", _always_equal, problems={"possible tampering"},
         why="a tensor subclass whose == is always True: the judge only ever sees plain tensors"),
    Case("fake_partial_credit", _partial_credit, fails={"all"},
         why="sys.displayhook(3.0) in its code: stock nbgrader reads that as 3 points"),
    *[Case(f"attack_{name.lower()}", empty_with_cell(getattr(attacks, name)), fails={"all"},
           also={"possible tampering", "not loaded for the tests", "error in a definition"},
           why=f"empty answers and {name.lower().replace('_', ' ')} (autograder/testdata/attacks.py)")
      for name in KERNEL_ATTACKS + PROBE_ATTACKS],

    # attacks on the grader: only the sandbox stops them, so they are graded only with it
    Case("attack_read_files", with_cell(READ_ATTACK, "generator"), sandbox_only=True,
         why="looks for the gradebook, the solutions, other students' notebooks, the instructor's home"),
    Case("attack_write_files", with_cell(WRITE_ATTACK, "generator"), sandbox_only=True,
         why="appends to the gradebook, grades.csv, the solutions and cgan_lib"),
    Case("attack_network", with_cell(NETWORK_ATTACK, "generator"), sandbox_only=True,
         why="connects to the grader's machine and the internet"),
    Case("attack_fork_bomb", with_cell(FORK_BOMB, "generator"), sandbox_only=True,
         also={"process cap", "too slow", "kernel died", "cell timeout", "cgroup kill", "grading failed"},
         why="the caps on processes stop it (the uid's RLIMIT_NPROC, then the cgroup's pids.max: which one it meets "
             "first, and how the cell ends, depends on timing); the tests ran outside the notebook"),
    Case("attack_raise_limits", with_cell(LIMITS_ATTACK, "generator"), problems={"out of memory"}, sandbox_only=True,
         why="lifts its own limits, then allocates 16 GB"),
    Case("attack_sleep_forever", with_cell(SLEEP_FOREVER, "generator"), problems={"too slow"},
         sandbox_only=True, why="ignores the grader's interrupt and sleeps"),
    Case("attack_fill_the_disk", with_cell(FILL_THE_DISK, "generator"), sandbox_only=True,
         why="writes 2 GiB and 200,000 files into its scratch: a bounded tmpfs says no"),
    Case("attack_memfd", with_cell(MEMFD, "generator"), problems={"cgroup kill"}, sandbox_only=True,
         also={"kernel died"}, why="memfd memory past RLIMIT_AS: the cgroup's memory cap counts it"),
    Case("attack_stderr_flood", with_cell(STDERR_FLOOD, "generator"), problems={"output flood", "output cut"},
         sandbox_only=True, why="100 MB to the kernel's inherited stderr: bounded pipes, never the grader's log; "
                                "the kernel forwards it to the cell, where the output limits cut it"),
]


def write(folder, sandbox=True, listen_port=9):
    """Write the sample class into `folder`; returns {student: Case} of what was written.

    `sandbox=False` leaves out the attacks that only the sandbox stops. The network attack
    tries `listen_port` on the grader's loopback (a test listens there).
    """
    folder = Path(folder)
    written = {}
    for case in CASES:
        if case.sandbox_only and not sandbox:
            continue
        built = case.build()
        data = built if isinstance(built, bytes) else nbformat.writes(built).encode()
        data = data.replace(b"{port}", str(listen_port).encode()) if case.student == "attack_network" else data
        path = folder / case.student / ("cgan/cgan.ipynb" if case.layout == "nested" else "cgan.ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        if case.layout == "symlink":
            path.symlink_to(SOLUTION)
        else:
            path.write_bytes(data)
        written[case.student] = case
    return written


if __name__ == "__main__":  # python -m autograder.testdata.sample_class FOLDER [--no-sandbox]
    target = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), REPO / "out" / "sample_class"))
    written = write(target, sandbox="--no-sandbox" not in sys.argv)
    print(f"{len(written)} submissions written to {target}")
