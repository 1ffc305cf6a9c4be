"""The feedback page's exporter: nbgrader's feedback template, with no script able to run and a hard size.

GenerateFeedback renders the autograded notebook with nbconvert's HTMLExporter and
nbgrader's `feedback` template. SafeFeedbackExporter is that exporter with three changes:

- markdown (written answers, instructors' comments) is rendered as before, then sanitised
  (autograder.reports.sanitize), since the template puts it in the page as raw HTML;
- the page gets a Content-Security-Policy that forbids every script, frame, plugin, form
  target, base URL and fetch (images only from data: URIs, styles only inline), and loses
  the template's own scripts (MathJax from a CDN: TeX stays as written), so even markup the
  sanitiser missed runs nothing and sends nothing anywhere;
- past `max_page_bytes` the heaviest cells are reduced to markers in the page (the graded
  notebook keeps them) until the page fits.

Wire it with `feedback_config()`, and append FEEDBACK_PREPROCESSORS to GenerateFeedback's
preprocessors after HideHiddenTests.
"""
import copy
import re

from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from traitlets import Integer, default
from traitlets.config import Config

from autograder.reports.sanitize import SanitizeFeedback, sanitize_html
from autograder.scoring.output_limits import OutputLimits, cut_largest_cells, megabytes, notebook_size

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; "
                           "worker-src 'none'; base-uri 'none'; form-action 'none'; img-src data:; "
                           "style-src 'unsafe-inline'")
PAGE_HEAD = (f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
             '<meta name="referrer" content="no-referrer">\n')
SCRIPT_ELEMENT = re.compile(r"<script\b.*?</script\s*>", re.I | re.S)
FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.I)  # bootstrap's glyphicons, fetched from ../fonts/ for nothing
HEAD_TAG = re.compile(r"<head\b[^>]*>", re.I)
HEAD_END = re.compile(r"</head\s*>", re.I)
FEEDBACK_PREPROCESSORS = [SanitizeFeedback]


def harden_page(html):
    """The page without its own scripts and web fonts, and with the policy as the first thing in <head>."""
    head, head_end = HEAD_TAG.search(html), HEAD_END.search(html)
    if head is None or head_end is None:
        raise ValueError("the feedback page has no <head> for its Content-Security-Policy: check the feedback template")
    inside = FONT_FACE.sub("", html[head.end(): head_end.start()])
    return SCRIPT_ELEMENT.sub("", html[: head.end()] + "\n" + PAGE_HEAD + inside + html[head_end.start():])


class SafeFeedbackExporter(HTMLExporter):
    """HTMLExporter whose markdown is sanitised and whose page is script-free and bounded (see the module)."""

    max_page_bytes = Integer(OutputLimits().page_bytes, help="largest feedback page, in bytes").tag(config=True)

    @default("exclude_anchor_links")
    def _no_anchor_links(self):
        return True  # headings lose their ids in sanitising, so their anchor links would lead nowhere

    @pass_context
    def markdown2html(self, context, source):
        return sanitize_html(super().markdown2html(context, source))

    def from_notebook_node(self, nb, resources=None, **kw):
        self.skip_svg_encoding = False  # SVG stays inside <img src="data:...">, where its scripts never run
        original = copy.deepcopy(nb)
        html, out_resources = super().from_notebook_node(nb, copy.deepcopy(resources), **kw)
        what = f"the feedback page passed {megabytes(self.max_page_bytes)}; the graded notebook has this output"
        for _ in range(6):
            size = len(html.encode())
            if size <= self.max_page_bytes:
                return harden_page(html), out_resources
            # cells are emptied in the notebook, whose bytes the page inflates (escaping) by size / notebook bytes
            excess = (size - self.max_page_bytes) * notebook_size(original) // size + 1
            emptied = cut_largest_cells(original, excess, what)
            self.log.warning("Feedback page of %s bytes: emptied cells %s", size, emptied)
            if not emptied:
                break
            html, out_resources = super().from_notebook_node(copy.deepcopy(original), copy.deepcopy(resources), **kw)
        raise ValueError(f"the feedback page is still larger than {megabytes(self.max_page_bytes)} with the largest "
                         f"cells emptied: look at the graded notebook by hand")


def feedback_config(limits=OutputLimits()):
    """The traitlets Config fragment that makes GenerateFeedback use SafeFeedbackExporter."""
    return Config({"GenerateFeedback": {"exporter_class": SafeFeedbackExporter},
                   "SafeFeedbackExporter": {"max_page_bytes": limits.page_bytes},
                   "SanitizeFeedback": {"limits": limits}})
