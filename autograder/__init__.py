"""The instructor's side of the lab, one subpackage per stage of grading:

    intake/     what the instructor downloaded: LMS exports, notebook repair, the tamper scan
    isolation/  where student code runs: the bubblewrap sandbox and the grading kernel
    scoring/    nbgrader's configuration and preprocessors, the gradebook
    run/        the grading run: the pipeline, the Dask engine, and the worker that grades one submission
                (forked by a warm zygote, so each submission does not import nbgrader and torch again)
    reports/    grades.csv, problems.csv, feedback pages
    testdata/   the sample class and the catalogue of correct and buggy variants

config.py defines the repository root, the default workspace and the limits, once.
"""
