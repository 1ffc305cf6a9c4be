"""Dask worker preload: a worker takes grading tasks only where students' code can be sandboxed.

    dask worker tcp://SCHEDULER:8786 --nthreads 1 --preload autograder.run.worker_setup

At start, before the worker registers with the scheduler, dask_setup() checks that this machine
can run the grading sandbox (autograder.isolation.sandbox: bubblewrap, root, namespaces) and only
then declares the resource SANDBOX_RESOURCE, one per thread, which every grading task requires.
A worker that cannot sandbox declares none, logs why, and so never gets a grading task; the
engine asks it why with refusal() and tells the instructor. (Declared at start, not later: Dask
does not reschedule waiting tasks when a running worker's resources change.)

$CGAN_SANDBOX_CHECK=module:function replaces the check on that worker (tests simulate a machine
without bubblewrap with it); the function returns None when the sandbox works, else why not.
"""
import importlib
import logging
import os

from autograder.isolation import sandbox

SANDBOX_RESOURCE = "sandbox"
CHECK_VARIABLE = "CGAN_SANDBOX_CHECK"
NOT_CHECKED = ("its sandbox check did not run: start it with "
               "`dask worker SCHEDULER --preload autograder.run.worker_setup`")
log = logging.getLogger(__name__)


def sandbox_check():
    """None when this machine can sandbox students' code, else why not (a sentence)."""
    check = sandbox.unavailable_reason
    if os.environ.get(CHECK_VARIABLE):
        module, _, name = os.environ[CHECK_VARIABLE].partition(":")
        check = getattr(importlib.import_module(module), name)
    try:
        return check()
    except Exception as error:
        return f"the sandbox check failed: {type(error).__name__}: {error}"


def dask_setup(worker):
    """Run by Dask in each worker process before it registers: declare the sandbox, or say why not."""
    worker.sandbox_refusal = sandbox_check()
    slots = 0 if worker.sandbox_refusal else worker.state.nthreads
    worker.state.total_resources[SANDBOX_RESOURCE] = worker.state.available_resources[SANDBOX_RESOURCE] = slots
    if worker.sandbox_refusal:
        log.warning("this worker takes no grading tasks: it cannot sandbox students' code: %s",
                    worker.sandbox_refusal)


def refusal(dask_worker):
    """Why this worker takes no grading tasks (None: it takes them); the engine runs it on workers."""
    return getattr(dask_worker, "sandbox_refusal", NOT_CHECKED)
