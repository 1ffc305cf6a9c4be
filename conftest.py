import os
import tempfile

# Notebooks run by pytest (nbval on solutions/, nbclient and nbgrader in tests/) use the
# short training schedule and save checkpoints in a scratch folder, not next to the
# notebook; their kernels inherit this environment.
os.environ.setdefault("CGAN_SCHEDULE", "short")
os.environ.setdefault("CGAN_CHECKPOINT_DIR", tempfile.mkdtemp(prefix="cgan-checkpoints-"))
