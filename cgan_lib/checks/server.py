"""The probe process: the student's definitions, answering the grader's probe requests with data.

    python -m cgan_lib.checks.server CONTROL_FD

The grader starts this in the grading sandbox and keeps one end of a Unix socket pair,
CONTROL_FD being the other. Over it:

    1. the grader sends {"prelude": [[label, source]], "cells": [[label, source, graded]]}.
       The prelude (the instructor's locked cells: imports, settings) runs as it is. Of the
       student's cells only definitions that run no code while loading are kept
       (cgan_lib.checks.definitions); the reply lists what was left out and what failed.
    2. for each test, the grader sends b"session" with two fresh pipe ends attached. This
       process forks; the child closes the socket, reads requests {"op", "target",
       "request"} from the first pipe and writes each probe's data to the second, until
       the pipe ends; then it exits, and this process answers b"done". The grader may
       send b"kill" meanwhile (a test past its time): the child is killed.
    3. b"clone" with one end of a new socket pair attached: this process forks a twin, with
       the definitions already loaded, that answers step 2 over the new socket. The grader
       runs two tests at a time that way, each twin one session after another.

A fresh child per test: whatever the code under test does to its own process (patching a
library, leaving threads behind) ends with that test, and no test can write into another's
replies. This process makes itself non-dumpable, so no child can trace or rewrite it.
Nothing here decides a grade: the grader judges the data, outside the sandbox.
"""
import ast
import ctypes
import linecache
import os
import select
import socket
import sys

PR_SET_DUMPABLE = 4


def load(message, namespace):
    """Run the prelude, load the student's definitions; the reply to the load message."""
    from cgan_lib.checks.definitions import own_names, split, transform
    from cgan_lib.checks.probes import error_info

    for label, source in message["prelude"]:
        exec(compile(source, f"<{label}>", "exec"), namespace)
    parsed, refused, errors = [], [], []
    for label, source, graded in message["cells"]:
        code = transform(source)
        try:
            parsed.append((label, code, ast.parse(code), graded))
        except SyntaxError as exc:
            error = error_info(exc)
            error.pop("exception")
            errors.append([label, error])
    own = own_names([tree for _, _, tree, _ in parsed])
    for label, code, tree, graded in parsed:
        filename = f"<cell {label}>"
        kept, left_out = split(tree, code, own)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        # other cells are mostly the notebook's own statements (the training loop, plots): not worth a line
        refused += [[label, line, text, why] for line, text, why in left_out if graded or text.startswith(("def ", "class "))]
        for node in kept.body:  # one at a time: a constant that fails does not take the rest of the cell with it
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), namespace)
            except Exception as exc:  # e.g. a NameError in a constant
                if graded or isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    error = error_info(exc)
                    error.pop("exception")
                    errors.append([label, error])
    return {"refused": refused, "errors": errors, "defined": sorted(k for k in namespace if not k.startswith("_"))}


def _session(request_fd, reply_fd, namespace):
    """The child: answer requests until the request pipe ends."""
    from cgan_lib.checks.core import _without_exceptions
    from cgan_lib.checks.probes import OPS
    from cgan_lib.checks.wire import read_message, write_message

    requests = os.fdopen(request_fd, "rb", buffering=0)
    replies = os.fdopen(reply_fd, "wb")
    while (message := read_message(requests)) is not None:
        target = namespace.get(message["target"])
        if target is None:
            write_message(replies, {"missing": message["target"]})
            continue
        write_message(replies, _without_exceptions(OPS[message["op"]](target, **message["request"]), []))


def warm_up():
    """Import once, before forking, what the first Adam step would import in every child (1-2.5 s)."""
    import torch
    weight = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.Adam([weight])
    (weight * 2).sum().backward()
    optimizer.step()


def serve(control):
    from cgan_lib.checks.wire import decode, encode

    namespace = {"__name__": "__probe__"}
    control.sendall(_framed(encode(load(decode(_receive(control)), namespace))))
    warm_up()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 64, 2)
        except OSError:
            return
        if not data:
            return
        if data == b"clone" and len(fds) == 1:
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:  # the twin: the same definitions, answering on its own socket
                control.close()
                control = socket.socket(fileno=fds[0])
            else:
                os.close(fds[0])
            continue
        if data != b"session" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            control.close()
            status = 0
            try:
                _session(fds[0], fds[1], namespace)
            except BaseException:
                status = 1
            os._exit(status)
        for fd in fds:
            os.close(fd)
        _supervise(control, child)


def _supervise(control, child):
    """Wait for the child; kill it if the grader says so; then tell the grader it is done."""
    exited = os.pidfd_open(child)
    try:
        while True:
            ready, _, _ = select.select([control, exited], [], [])
            if exited in ready:
                break
            if control in ready and control.recv(64) in (b"kill", b""):
                os.kill(child, 9)
        _, status = os.waitpid(child, 0)
    finally:
        os.close(exited)
    control.sendall(b"done")


def _framed(message):
    return len(message).to_bytes(8, "big") + message


def _receive(control):
    size = int.from_bytes(_exactly(control, 8), "big")
    return _exactly(control, size)


def _exactly(control, n):
    chunks = []
    while n:
        chunk = control.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the grader closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def main(control_fd):
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no child may ptrace or rewrite this process
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]  # never import from the scratch folder
    sys.stdin = open(os.devnull)
    serve(socket.socket(fileno=control_fd))


if __name__ == "__main__":
    main(int(sys.argv[1]))
