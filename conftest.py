import atexit
import os
import shutil
import tempfile

# Notebooks run by pytest (nbval on solutions/, nbclient and nbgrader in tests/) use the
# short training schedule and save checkpoints in a scratch folder, not next to the
# notebook; their kernels inherit this environment. The folder goes when pytest ends.
os.environ.setdefault("CGAN_SCHEDULE", "short")
if "CGAN_CHECKPOINT_DIR" not in os.environ:
    os.environ["CGAN_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="cgan-checkpoints-")
    atexit.register(shutil.rmtree, os.environ["CGAN_CHECKPOINT_DIR"], ignore_errors=True)
