"""Student mode: JupyterLab with the assignment open and only the tools a student needs.

    python -m cgan_lib.lab                        # cgan.ipynb in this folder
    python -m cgan_lib.lab path/to/cgan.ipynb     # any other notebook
    python -m cgan_lib.lab cgan.ipynb --no-browser --port 8890   # other options go to `jupyter lab`

The same command on Windows, macOS and Linux, with or without a GPU. Compared with plain
`jupyter lab`, which instructors keep unchanged:

- nbgrader's instructor tools are off: Formgrader, Create Assignment, Course List and the
  Nbgrader menu (their lab plugins and server extensions);
- nbgrader's Assignment List is off too, unless the course has an exchange folder;
- nbgrader's Validate button stays, and runs `python -m cgan_lib.validate` on the notebook:
  the same report as on the command line, checkpoints in a temporary folder, Jupyter
  responsive meanwhile (nbgrader's own handler blocks the server while it runs);
- JupyterLab does not ask "Would you like to receive official Jupyter news?";
- kernels get CurveZMQ keys, so they start without ipykernel's warning about running
  over TCP without encryption; connecting to them logs no websocket warning either.

Nothing is written to your Jupyter configuration: these settings live in a temporary
folder named by JUPYTER_CONFIG_PATH for this server only, gone when it stops. This module
is also the server extension (`cgan_lib.lab`) that serves the Validate button.
"""
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.parse
from html import escape
from pathlib import Path

import zmq
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from jupyterlab.labapp import LabApp
from nbgrader.server_extensions.validate_assignment.handlers import NbGraderVersionHandler
from tornado import web
from tornado.ioloop import IOLoop

from cgan_lib.validate import NotValidated, find_notebook

# nbgrader's parts for instructors, off in student mode: lab plugins and server extensions.
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:menu"]
INSTRUCTOR_SERVER_EXTENSIONS = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
# The Assignment List needs nbgrader's exchange folder; without one it only shows errors.
ASSIGNMENT_LIST_PLUGIN = "@jupyter/nbgrader:assignment-list"
ASSIGNMENT_LIST_SERVER_EXTENSION = "nbgrader.server_extensions.assignment_list"
# nbgrader's Validate handler is replaced by ours (below); its lab plugin, the button, stays.
NBGRADER_VALIDATE_SERVER_EXTENSION = "nbgrader.server_extensions.validate_assignment"
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"  # "official Jupyter news?" and update notices
THIS_EXTENSION = "cgan_lib.lab"
SERVER_OPTIONS = ["--ServerApp.ip=127.0.0.1"]  # options given after NOTEBOOK come later and win
# Logged by tornado >= 6.5 whenever a notebook connects to its kernel, because jupyter_server
# 2.21's keep-alive settings are milliseconds that tornado reads as seconds; harmless, and
# lowering the timeout instead makes jupyter_server drop the connections every 30 s.
HARMLESS_LOG_MESSAGES = ("The websocket_ping_timeout (",)
VALIDATE_TIMEOUT = 1800  # seconds a Validate run may take (a slow laptop, a long notebook)
SOURCE_LINES_SHOWN = 3  # lines of a cell the Validate dialog shows above each problem
DIALOG_COLUMNS = 90  # characters per line of the Validate dialog's messages


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    named = [arg for arg in argv[:1] if not arg.startswith("-")]
    try:
        notebook = find_notebook(named[0] if named else None, command="python -m cgan_lib.lab")
    except NotValidated as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config_dir = Path(tempfile.mkdtemp(prefix="cgan-student-mode-"))
    try:
        write_config(config_dir, with_assignment_list=exchange_folder() is not None)
        os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            [str(config_dir)] + [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p])
        LabApp.launch_instance(argv=[str(notebook), *SERVER_OPTIONS, *kernel_options(), *argv[len(named):]])
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
    return 0


def write_config(config_dir, with_assignment_list):
    """The student mode's Jupyter configuration, as a config folder for JUPYTER_CONFIG_PATH."""
    disabled_plugins = INSTRUCTOR_PLUGINS + [NEWS_PLUGIN] + ([] if with_assignment_list else [ASSIGNMENT_LIST_PLUGIN])
    server_extensions = {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS + [NBGRADER_VALIDATE_SERVER_EXTENSION]}
    server_extensions[ASSIGNMENT_LIST_SERVER_EXTENSION] = with_assignment_list
    server_extensions[THIS_EXTENSION] = True
    # Folders first in JUPYTER_CONFIG_PATH win, key by key, over the user's and the environment's.
    _write_json(config_dir / "labconfig" / "page_config.json",
                {"disabledExtensions": {name: True for name in disabled_plugins}})
    _write_json(config_dir / "jupyter_server_config.d" / "cgan-student-mode.json",
                {"ServerApp": {"jpserver_extensions": server_extensions}})


def exchange_folder():
    """nbgrader's exchange folder as the Assignment List would use it, or None when there is none."""
    from nbgrader.apps import NbGrader
    from nbgrader.exchange.default.exchange import Exchange

    app = NbGrader()
    app.log.setLevel(logging.ERROR)  # no "No nbgrader_config.py file found" for students
    app.load_config_file()
    root = Path(Exchange(config=app.config).root)
    return root if sys.platform != "win32" and root.is_dir() else None  # nbgrader's exchange is POSIX-only


def kernel_options():
    """CurveZMQ keys for kernels when pyzmq has CurveZMQ (its wheels do)."""
    return ["--KernelManager.transport_encryption=auto"] if zmq.has("curve") else []


def validation_answer(report):
    """A `python -m cgan_lib.validate --json` report as nbgrader's Validate dialog expects it."""
    if "error" in report:
        return {"success": False, "value": report["error"]}
    failed = [{"source": _beginning(problem["source"]),
               "error": escape(_wrapped(f'cell "{problem["cell"]}" (cell {problem["index"]}): {problem["message"]}'),
                               quote=False)}
              for problem in report["problems"]]
    return {"success": True, "value": {"failed": failed} if failed else {}}


def _beginning(source, lines=SOURCE_LINES_SHOWN):
    """The first lines of a cell: enough to find it, short enough that the message stays in view."""
    kept = source.strip().splitlines()
    return "\n".join(kept[:lines] + (["..."] if len(kept) > lines else []))


def _wrapped(text, width=DIALOG_COLUMNS):
    """`text` with its long lines broken (the dialog does not wrap), each continuation indented under its line."""
    lines = []
    for line in text.splitlines():
        indent = line[:len(line) - len(line.lstrip())]
        lines += textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_on_hyphens=False) or [""]
    return "\n".join(lines)


class ValidateHandler(JupyterHandler):
    """POST /assignments/validate?path=NOTEBOOK, as nbgrader's Validate button sends it."""

    @web.authenticated
    async def post(self):
        path = self.get_argument("path", None) or (self.get_json_body() or {}).get("path")
        root = Path(self.settings["server_root_dir"]).expanduser().resolve()
        target = (root / (path or "")).resolve()
        if not path or not target.is_relative_to(root):
            raise web.HTTPError(403, "Validate: the notebook must be inside the server's folder")
        report = await IOLoop.current().run_in_executor(None, _run_validate, target)
        self.finish(json.dumps(validation_answer(report)))


def _run_validate(notebook):
    """`python -m cgan_lib.validate NOTEBOOK --json` in a process of its own (its kernel's log goes to ours)."""
    try:
        done = subprocess.run([sys.executable, "-m", "cgan_lib.validate", str(notebook), "--json"],
                              stdout=subprocess.PIPE, text=True, timeout=VALIDATE_TIMEOUT)
        return json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        return {"error": f"validating {notebook.name} took more than {VALIDATE_TIMEOUT} s and was stopped"}
    except json.JSONDecodeError:
        return {"error": f"the validator stopped with exit status {done.returncode} and no report; "
                         f"run `python -m cgan_lib.validate {notebook.name}` in a terminal to see why"}


def _jupyter_server_extension_points():
    return [{"module": THIS_EXTENSION}]


def _load_jupyter_server_extension(server_app):
    base_url = server_app.web_app.settings["base_url"]
    server_app.web_app.add_handlers(".*$", [
        (url_path_join(base_url, "assignments/validate"), ValidateHandler),
        (url_path_join(base_url, "nbgrader_version"), NbGraderVersionHandler),
    ])
    logging.getLogger("tornado.general").addFilter(_without_harmless_messages)
    IOLoop.current().add_callback(_print_address, server_app)


def _without_harmless_messages(record):
    return not record.getMessage().startswith(HARMLESS_LOG_MESSAGES)


def _print_address(server_app):
    """Once the server listens: the address of the notebook, where a student sees it."""
    path = "lab"
    if server_app.file_to_run:
        notebook = Path(server_app.file_to_run).resolve().relative_to(Path(server_app.root_dir).resolve())
        path = "lab/tree/" + urllib.parse.quote(notebook.as_posix())
    token = server_app.identity_provider.token
    query = "?token=" + (token if server_app.identity_provider.token_generated else "...") if token else ""
    print(f"\n    Student mode: open {server_app.connection_url}{path}{query}\n"
          "    Stop with Ctrl+C (twice), or File > Shut Down in JupyterLab.\n", flush=True)


def _write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
