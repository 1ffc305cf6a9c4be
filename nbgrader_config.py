# nbgrader looks for its configuration here; the lab's lives in autograder/.
c = get_config()  # noqa: F821
load_subconfig("autograder/nbgrader_config.py")  # noqa: F821
