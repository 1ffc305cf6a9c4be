"""Student-controlled HTML made inert for the feedback page: written answers, rich outputs, their metadata.

Everything a student's code displays, and every written answer, ends up in the feedback
HTML that students and instructors open; nbconvert's feedback template puts it there as
live markup (a <script>, an <img onerror>, an application/javascript output, a markdown
answer with a <script> or a javascript: link all run). Here:

- `sanitize_html` keeps an allow-list of inert tags and attributes (bleach), after removing
  script, style, iframe, object, svg, ... elements with their content; links only to
  http(s), mailto and #fragments; images only from data:image/... URIs; style attributes
  only with a few properties and never a url(); classes only the syntax-highlighting ones.
- `SanitizeFeedback` (a preprocessor for GenerateFeedback) sanitises text/html outputs,
  renders text/markdown outputs to sanitised HTML, drops JavaScript, widget and unknown
  outputs with a visible note, checks base64 images, drops output metadata the template
  reads as markup (filenames, isolated, non-numeric width/height), and notebook/cell
  metadata the page does not need. HTML or markdown past OutputLimits.rendered_markup_chars
  (bleach sanitises about 100 kB a second) is shown as text. SVG stays as nbconvert
  shows it, inside <img src="data:...">, where its scripts never run.
- Markdown cells are rendered and then sanitised by the feedback exporter
  (autograder.reports.feedback_exporter), which also puts a Content-Security-Policy on the page.

nbconvert's own SanitizeHTML preprocessor is not used: it sanitises a markdown cell's
*source* (so a markdown [link](javascript:...) survives, and `<` in a code block turns
into a literal `&lt;`), drops SVG silently, and keeps `class`/`id` and all of bleach's
default attributes; HTMLExporter.sanitize_html does not reach nbgrader's markdown cells.
"""
import re

import bleach
from bleach.css_sanitizer import CSSSanitizer
from bs4 import BeautifulSoup
from nbconvert.filters import markdown2html_mistune
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Instance

from autograder.scoring.output_limits import Budget, OutputLimits, megabytes

INERT_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del", "details",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"}
# removed with everything inside them: what they hold is code, CSS, another document, or markup outside HTML
DROPPED_WITH_CONTENT = ["script", "style", "template", "noscript", "iframe", "frame", "frameset", "object", "embed",
                        "applet", "svg", "math", "textarea", "select", "title", "xmp", "noembed", "noframes", "head"]
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}, "td": {"colspan", "rowspan"},
              "th": {"colspan", "rowspan", "scope"}, "ol": {"start"}, "abbr": {"title"}}
STYLE_PROPERTIES = {"color", "background-color", "text-align", "vertical-align", "font-weight", "font-style",
                    "text-decoration", "white-space", "border-collapse"}
HIGHLIGHT_CLASSES = re.compile(r"^(highlight|hl-[\w+#-]+|[a-z]{1,2}[0-9]?|err|cpf)$")  # pygments' token classes
SAFE_HREF = re.compile(r"^(https?://|mailto:|#)", re.I)
SAFE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$", re.I)
UNSAFE_STYLE = re.compile(r"url|expression|image|@|\\|/\*|&", re.I)  # no fetches, no escapes, no comments
NUMBER = re.compile(r"^\d{1,5}(px|%)?$")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
ACTIVE = re.compile(r"<\s*(script|iframe|object|embed|svg|meta|base|form|link|style)\b|\bon[a-z]+\s*=|javascript:",
                    re.I)  # only decides whether to add ACTIVE_NOTE: the allow-list is what makes output safe

SAFE_MIMES = {"text/plain", "text/latex", "image/png", "image/jpeg", "image/svg+xml"}  # the template escapes or encodes
SCRIPT_NOTE = "[{mime} output removed by the grader: feedback pages never run code]"
ACTIVE_NOTE = "[the grader removed scripts or other active content from the output above]"
UNSAFE_IMAGE_NOTE = "[{mime} output removed by the grader: it is not a valid base64 image]"
TOO_LARGE_NOTE = "[{mime} output of {size} shown as text: the grader renders such outputs up to {limit}]"

_css = CSSSanitizer(allowed_css_properties=STYLE_PROPERTIES)


def _allowed_attribute(tag, name, value):
    if name in ATTRIBUTES.get(tag, ()):
        if name == "href":
            return bool(SAFE_HREF.match(value.strip()))
        if name == "src":
            return bool(SAFE_IMAGE.match(value.strip()))
        if name in ("width", "height"):
            return bool(NUMBER.match(value.strip()))
        return True
    if name == "style":
        return not UNSAFE_STYLE.search(value)
    if name == "class" and tag in ("div", "span", "pre", "code"):
        return all(HIGHLIGHT_CLASSES.match(token) for token in value.split())
    return False


_cleaner = bleach.Cleaner(tags=INERT_TAGS, attributes=_allowed_attribute, protocols={"http", "https", "mailto", "data"},
                          strip=True, strip_comments=True, css_sanitizer=_css)


def sanitize_html(html):
    """`html` with only inert markup left: see the module's docstring for what stays."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup.find_all(DROPPED_WITH_CONTENT):
        element.decompose()
    for image in soup.find_all("img"):  # an image that may not load would show as a broken icon
        if not SAFE_IMAGE.match(str(image.get("src", "")).strip()):
            image.decompose()
    for link in soup.find_all("a"):  # a link that may not lead anywhere is only its text
        if not SAFE_HREF.match(str(link.get("href", "")).strip()):
            link.unwrap()
    return _cleaner.clean(str(soup))


def markdown_to_safe_html(source):
    """A markdown text rendered as nbconvert renders it, then sanitised."""
    return sanitize_html(markdown2html_mistune(source))


def _note(text):
    return new_output("display_data", data={"text/plain": text})


def _safe_metadata(mime, metadata):
    """Only numeric width and height of an image: the template writes them into an <img> tag unquoted."""
    sizes = metadata.get(mime) if isinstance(metadata.get(mime), dict) else {}
    kept = {key: sizes[key] for key in ("width", "height") if isinstance(sizes.get(key), int)}
    return {mime: kept} if kept else {}


def _as_text(mime, value, data, limit):
    """What a rich output too large to sanitise in time shows instead: its plain text, or its source as text."""
    plain = data.get("text/plain")
    shown = plain if isinstance(plain, str) and not plain.startswith("<IPython.core.display.") else value
    return shown, TOO_LARGE_NOTE.format(mime=mime, size=megabytes(len(value)), limit=megabytes(limit))


def sanitize_rich_output(output, limits, markup_budget):
    """Make one display or result safe; the notes to show after it.

    Markup (HTML, markdown) is sanitised up to `limits.rendered_markup_chars` per output and
    `markup_budget` for the notebook (bleach sanitises about 100 kB a second); larger is shown as text.
    """
    data, notes, kept = output.get("data", {}), [], {}
    for mime, value in data.items():
        if mime in ("text/html", "text/markdown"):
            value = str(value)
            if len(value) > min(limits.rendered_markup_chars, markup_budget.left):
                kept["text/plain"], note = _as_text(mime, value, data, limits.rendered_markup_chars)
                notes.append(note)
                continue
            markup_budget.take(len(value))
            if mime == "text/markdown":
                kept.setdefault("text/html", markdown_to_safe_html(value))
            else:
                kept[mime] = sanitize_html(value)
            if ACTIVE.search(value) and ACTIVE_NOTE not in notes:
                notes.append(ACTIVE_NOTE)
        elif mime in ("image/png", "image/jpeg") and not (isinstance(value, str) and BASE64.match(value)):
            notes.append(UNSAFE_IMAGE_NOTE.format(mime=mime))
        elif mime in SAFE_MIMES and isinstance(value, str):
            kept.setdefault(mime, value)
        else:  # JavaScript, widgets, and anything the template might render some day
            notes.append(SCRIPT_NOTE.format(mime=mime))
    image = next((mime for mime in ("image/png", "image/jpeg") if mime in kept), None)
    output.data, output.metadata = kept, _safe_metadata(image, output.get("metadata", {})) if image else {}
    return notes


class SanitizeFeedback(NbGraderPreprocessor):
    """For feedback: every output and cell made inert (see the module's docstring); markdown is left to the exporter."""

    limits = Instance(OutputLimits, args=()).tag(config=True)

    def preprocess(self, nb, resources):
        self._markup_budget = Budget(self.limits.rendered_markup_chars_per_notebook)
        nb.metadata = {key: nb.metadata[key] for key in ("kernelspec", "language_info") if key in nb.metadata}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        cell.metadata = {key: cell.metadata[key] for key in ("nbgrader", "tags") if key in cell.metadata}
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and not re.fullmatch(r"[\w-]*", str(grade_id)):  # the template writes it unescaped
            cell.metadata["nbgrader"]["grade_id"] = re.sub(r"[^\w-]", "_", str(grade_id))
        if cell.cell_type == "raw":
            cell.source = sanitize_html(cell.source)
        if cell.cell_type != "code":
            return cell, resources
        if not isinstance(cell.get("execution_count"), int):  # the template writes it unescaped too
            cell.execution_count = None
        outputs = []
        for output in cell.outputs:
            outputs.append(output)
            if output.output_type == "stream":
                output.name = "stderr" if output.name == "stderr" else "stdout"
            elif output.output_type in ("display_data", "execute_result"):
                if output.output_type == "execute_result" and not isinstance(output.get("execution_count"), int):
                    output.execution_count = None
                outputs.extend(_note(text) for text in sanitize_rich_output(output, self.limits, self._markup_budget))
            elif output.output_type != "error":
                outputs[-1] = _note(SCRIPT_NOTE.format(mime=output.output_type))
        cell.outputs = outputs
        return cell, resources
