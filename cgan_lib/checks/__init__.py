"""The lab's tests: probes that run your code, and a judge that decides from what it did.

The notebook's test cells call these; so does the grader, with the same code. In the
notebook everything runs in your kernel. When the lab is graded, your code runs in a
sandboxed process and only the data it produces comes back to the judge.

    check_generator(Generator, opt)
    check_discriminator(Discriminator, opt)
    check_train_step(train_step, opt)
    check_latent_points(generate_latent_points, opt)

A failing check raises TestFailed with a message that says what was expected, what your
code did and where to look.
"""
from cgan_lib.checks.core import Remote, TestFailed, fail, ok, probe
from cgan_lib.checks.latent import check_latent_points
from cgan_lib.checks.networks import check_discriminator, check_generator
from cgan_lib.checks.train_step import check_train_step
from cgan_lib.checks import netviz_probe as _netviz_probe  # noqa: F401  (registers the netviz_run probe op)

__all__ = ["TestFailed", "Remote", "probe", "fail", "ok", "check_generator", "check_discriminator",
           "check_train_step", "check_latent_points"]
