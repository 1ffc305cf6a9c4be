"""The student mode in a real browser: `python -m cgan_lib.lab` as a student sees it.

JupyterLab runs on 127.0.0.1 (a free port, a token) in a temporary folder holding the
release filled with the solution (`cgan.ipynb`) and the release as handed out
(`untouched.ipynb`); Debian's Chromium, headless and driven by Playwright, uses it:
Run All Cells on the cheapest schedule, save, reload, Validate. Plain `jupyter lab` is the
counterpart: there the instructor's tools and the news question must be present, which
is what makes their absence in the student mode mean something.

Screenshots and the servers' logs go to out/browser/. Every process is started here and
stopped by its PID. Skipped without Chromium, except in CI (CGAN_REQUIRE_BROWSER=1).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from autograder.testdata.sample_class import RELEASE, solved

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
KERNEL_READY = re.compile(r"\(ipykernel\) \| Idle")  # the status bar, once the kernel is connected and idle
TOKEN = "student-mode-test-token"
SERVER_START_TIMEOUT = 120  # seconds for Jupyter to answer
PAGE_TIMEOUT = 60_000       # ms for JupyterLab to show a notebook
RUN_ALL_TIMEOUT = 900_000   # ms for Run All on the quick schedule, 2 busy cores
VALIDATE_TIMEOUT = 600_000  # ms for the Validate button's run
NEWS_WAIT = 5               # seconds a news question would take to appear (plain lab: under 1 s)
SCHEDULE = "quick"  # the default a student gets: 4 epochs over all 60,000 images, about a minute of training
INSTRUCTOR_COMMANDS = ["Formgrader", "Create Assignment", "Course List", "Assignment List"]
NEWS_QUESTION = re.compile("official Jupyter news", re.IGNORECASE)
# The progress bar's text: "epoch 3/10 ... D=0.2 G=0.9" while it runs, "done: 10 epochs ... D loss 0.2" after.
PROGRESS_TEXT = re.compile(r"(epoch \d+/\d+|\d+ epochs).*\bD\b", re.DOTALL)
# Server log lines a student may see and that are expected: the downloaded notebook has no signature
# yet.
EXPECTED_WARNINGS = [re.compile(r"Notebook \S+ is not trusted")]

pytestmark = pytest.mark.usefixtures("real_data_dir")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CGAN_REQUIRE_BROWSER"):
            pytest.fail(f"CGAN_REQUIRE_BROWSER is set but {CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def jupyter(command, folder, log_name):
    """A Jupyter server started with `command` in `folder`; yields its base URL; stopped by its PID."""
    port = free_port()
    state = folder.parent / f"{log_name}-state"  # Jupyter's own files, away from the user's
    env = {**os.environ, "CGAN_SCHEDULE": SCHEDULE, "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTER_DATA_DIR": str(state / "data"), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces")}
    env.pop("CGAN_CHECKPOINT_DIR", None)  # checkpoints/ next to the notebook, as for a student
    # Every cell in the page, not only those scrolled to, so that the checks see all outputs.
    notebook_settings = state / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    notebook_settings.parent.mkdir(parents=True)
    notebook_settings.write_text(json.dumps({"windowingMode": "none"}))
    options = ["--no-browser", f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}"]
    if os.geteuid() == 0:
        options.append("--allow-root")
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"{log_name}.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([*command, *options], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert server.poll() is None, f"Jupyter stopped (exit {server.returncode}): see {log_path}"
            try:
                urllib.request.urlopen(f"{base}api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, f"Jupyter did not answer in {SERVER_START_TIMEOUT} s: see {log_path}"
                time.sleep(0.5)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)  # Jupyter shuts its kernels down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the group started above, by its id
            server.wait()


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student") / "work"
    folder.mkdir()
    nbformat.write(solved(), folder / "cgan.ipynb")
    shutil.copy(RELEASE, folder / "untouched.ipynb")
    command = [sys.executable, "-m", "cgan_lib.lab", "cgan.ipynb"]
    with jupyter(command, folder, "jupyter-student-mode") as base:
        yield base, folder


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("instructor") / "work"
    folder.mkdir()
    shutil.copy(RELEASE, folder / "cgan.ipynb")
    command = [sys.executable, "-m", "jupyterlab", "cgan.ipynb"]
    with jupyter(command, folder, "jupyter-plain-lab") as base:
        yield base


def open_notebook(page, base, name):
    """JupyterLab showing notebook `name` alone (`reset`: no tabs restored from an earlier page), its kernel ready."""
    page.goto(f"{base}lab/tree/{name}?reset&token={TOKEN}")
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=PAGE_TIMEOUT)
    page.locator("#jp-main-statusbar", has_text=KERNEL_READY).wait_for(timeout=PAGE_TIMEOUT)


def menu_bar(page):
    return page.locator("#jp-menu-panel .lm-MenuBar-itemLabel").all_inner_texts()


def side_bar(page):
    return [tab.get_attribute("title") or "" for tab in page.locator(".jp-SideBar .lm-TabBar-tab").all()]


def palette_finds(page, words):
    """The command palette's entries for `words`."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.wait_for()
    search.fill(words)
    found = page.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    return [label for label in found if words.lower() in label.lower()]


def news_question(page):
    time.sleep(NEWS_WAIT)
    return page.locator(".Toastify__toast", has_text=NEWS_QUESTION).count()


def run_all(page, n_code_cells):
    """Run > Run All Cells, and wait until every code cell has run."""
    page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    try:
        page.wait_for_function("""n => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
            return prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p));
        }""", arg=n_code_cells, timeout=RUN_ALL_TIMEOUT, polling=1000)
    except Exception:
        page.screenshot(path=OUT / "student-02-run-all-did-not-finish.png")
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        raise AssertionError(f"Run All did not finish in {RUN_ALL_TIMEOUT / 1000:.0f} s; the prompts: {prompts}") from None


def save(page):
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=PAGE_TIMEOUT)


def validate(page):
    """Click nbgrader's Validate button; the dialog's message element."""
    page.locator(f"{NOTEBOOK} .jp-NotebookPanel-toolbar .validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    message.wait_for(timeout=VALIDATE_TIMEOUT)
    return message


def cell_output(page, marker):
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=marker)).first
    cell.scroll_into_view_if_needed()
    return cell.locator(".jp-OutputArea")


def server_warnings(log_name):
    lines = (OUT / f"{log_name}.log").read_text().splitlines()
    return [line for line in lines if re.search(r"^\[[WEC] |WARNING|Warning|Traceback", line)
            and not any(expected.search(line) for expected in EXPECTED_WARNINGS)]


def test_plain_jupyter_lab_keeps_the_instructor_s_tools(instructor_lab, page):
    open_notebook(page, instructor_lab, "cgan.ipynb")
    assert news_question(page) == 1
    assert "Nbgrader" in menu_bar(page)
    assert any("Create Assignment" in title for title in side_bar(page))
    page.screenshot(path=OUT / "plain-lab-01-instructor-tools-and-news-question.png")
    for command in INSTRUCTOR_COMMANDS:
        assert palette_finds(page, command), f"plain jupyter lab lost nbgrader's {command}"


def test_student_mode_shows_no_instructor_tools_and_no_news_question(student_lab, page):
    base, _ = student_lab
    open_notebook(page, base, "untouched.ipynb")
    assert news_question(page) == 0
    assert "Nbgrader" not in menu_bar(page) and "Run" in menu_bar(page)
    assert not any("Create Assignment" in title for title in side_bar(page))
    assert page.locator(f"{NOTEBOOK} .jp-NotebookPanel-toolbar .validate-button").count() == 1
    page.screenshot(path=OUT / "student-01-opened-no-instructor-tools.png")
    for command in INSTRUCTOR_COMMANDS:
        assert palette_finds(page, command) == [], f"the student mode offers {command}"
    assert palette_finds(page, "Run All Cells"), "the command palette search itself"


def test_student_runs_the_solved_notebook_reloads_it_and_validates(student_lab, page):
    base, folder = student_lab
    open_notebook(page, base, "cgan.ipynb")
    n_code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(folder / "cgan.ipynb", as_version=4).cells)
    started = time.monotonic()
    run_all(page, n_code_cells)
    run_all_s = time.monotonic() - started
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, f"error output: {errors.all_inner_texts()}"
    images = page.locator(".jp-RenderedImage img")
    assert images.count() >= 4  # real images, generated grids, losses, checkpoints side by side, metrics
    assert all(image.evaluate("img => img.naturalWidth > 0") for image in images.all())
    cell_output(page, "plot_losses(").scroll_into_view_if_needed()
    page.screenshot(path=OUT / "student-02-after-run-all.png")
    save(page)
    assert list((folder / "checkpoints").rglob("*.pth")), "the training loop saved no checkpoint next to the notebook"

    page.reload()
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=PAGE_TIMEOUT)
    progress = cell_output(page, "TrainingProgress(")
    progress.wait_for()
    page.screenshot(path=OUT / "student-03-after-reload-progress.png")
    shown = progress.inner_text()
    (OUT / "student-03-progress-after-reload.txt").write_text(shown)
    assert PROGRESS_TEXT.search(shown) and "Error displaying widget" not in shown, (
        f"no progress text after a reload; the training cell shows: {shown!r}")

    started = time.monotonic()
    message = validate(page)
    validate_s = time.monotonic() - started
    page.screenshot(path=OUT / "student-04-validate-success.png")
    assert "validation-success" in message.get_attribute("class"), message.inner_text()
    assert "Success! Your notebook passes all the tests." in message.inner_text()
    (OUT / "student-timings.json").write_text(json.dumps({"run_all_s": round(run_all_s, 1),
                                                          "validate_s": round(validate_s, 1)}))


def test_student_validates_the_untouched_notebook(student_lab, page):
    base, _ = student_lab
    open_notebook(page, base, "untouched.ipynb")
    message = validate(page)
    page.screenshot(path=OUT / "student-05-untouched-validate-failed.png")
    text = message.inner_text()
    assert "validation-failed" in message.get_attribute("class"), text
    unanswered = [c.metadata.nbgrader["grade_id"] for c in nbformat.read(RELEASE, as_version=4).cells
                  if c.metadata.get("nbgrader", {}).get("solution")]
    for name in unanswered + ["test_generator"]:
        assert f'cell "{name}"' in text


def test_student_mode_server_log_has_no_warnings(student_lab):
    assert server_warnings("jupyter-student-mode") == []
