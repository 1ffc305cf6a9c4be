"""Hostile submissions: code that tries to get points it has not earned, or to read what it must not.

Each attack is a list of extra code cells inserted into a notebook whose answers are
empty (the untouched release) or buggy, with the honest score it must still get. The
sample class (sample_class.py) grades them through the whole pipeline; tests/test_verdict.py
runs the probe-side ones straight against the verdict.

They cover the attack run's classes: hooks on the IPython shell, patched or rebound names,
code loaded from files the submission writes, history reads, forged outputs, code hidden in
a %%capture cell, and code aimed at the probe process that the verdict talks to.
"""

# --------------------------------------------------------------------------- on the notebook's kernel
HOOK_INPUT_TRANSFORMER = '''ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ["pass\\n"] if any("check_" in l or "HIDDEN" in l for l in lines) else lines)
ip.input_transformers_cleanup.append(lambda lines: lines)
print("installed an input transformer that blanks every test cell")'''

HOOK_SHOWTRACEBACK = '''ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None
ip._showtraceback = lambda *args, **kwargs: None
ip.showsyntaxerror = lambda *args, **kwargs: None
print("errors are now invisible")'''

HOOK_RUN_CELL = '''import IPython
ip = get_ipython()
original = ip.run_cell
def run_cell(raw_cell, *args, **kwargs):
    if "check_" in raw_cell or "HIDDEN" in raw_cell:
        raw_cell = "pass"
    return original(raw_cell, *args, **kwargs)
ip.run_cell = run_cell
type(ip).run_cell = lambda self, raw_cell, *a, **k: original("pass" if "check_" in raw_cell else raw_cell, *a, **k)'''

HOOK_EVENTS = '''import sys
def swallow(result):
    result.error_in_exec = None
    result.error_before_exec = None
get_ipython().events.register("post_run_cell", swallow)
sys.excepthook = lambda *args: None'''

CODE_FROM_A_FILE = '''from pathlib import Path
Path("helpers_patch.py").write_text("""
import cgan_lib.checks as checks, cgan_lib.checks.core as core
def passes(*args, **kwargs):
    print('\\u2714 All visible tests passed.')
for name in ('check_generator', 'check_discriminator', 'check_train_step', 'check_latent_points'):
    setattr(checks, name, passes)
core.fail = lambda *args, **kwargs: None
core.TestFailed = type('Never', (Exception,), {})
import torch
torch.allclose = lambda *args, **kwargs: False
""")
import helpers_patch'''

REBIND_IMPORTED = '''def check_generator(*args, **kwargs):
    print("\\u2714 All visible Generator tests passed.")
check_discriminator = check_train_step = check_latent_points = check_generator
import cgan_lib.checks.networks as networks
networks.fail = lambda *args, **kwargs: None'''

PATCH_THROUGH_ALIAS = '''m = torch
m.allclose = lambda *args, **kwargs: False
m.equal = lambda *args, **kwargs: False
import cgan_lib.checks.core as c
c.fail = lambda *args, **kwargs: None
np.testing.assert_allclose = lambda *args, **kwargs: None'''

CAPTURED = '''%%capture hidden
import cgan_lib.checks as checks
checks.check_generator = checks.check_discriminator = lambda *args, **kwargs: None
checks.check_train_step = checks.check_latent_points = lambda *args, **kwargs: None'''

READ_HISTORY = '''import binascii
ip = get_ipython()
cells = list(In) + [src for _, _, src in ip.history_manager.get_range(raw=True)]
for source in cells:
    if "binascii" in source:
        continue  # this cell itself
    if "HIDDEN" in source or "hidden_" in source or "def hidden" in source:
        print("HISTORY:", binascii.hexlify(source.encode()).decode())
print("history read:", len(cells), "cells")'''

FORGED_OUTPUT = '''from IPython.display import display, HTML
print("\\u2714 All visible Generator tests passed.")
print("\\u2714 All visible train_step tests passed.")
display(HTML("<b>Score: 28 / 28</b>"))
import sys
sys.displayhook(3.0)'''

# --------------------------------------------------------------------------- on the probe process
FORGE_FROM_A_CLASS_BODY = '''class Patcher:
    import cgan_lib.checks.probes as probes
    probes.OPS["module_run"] = lambda *args, **kwargs: {"results": []}
    probes.OPS["function_run"] = lambda *args, **kwargs: {"results": []}'''

FORGE_FROM_A_DECORATOR = '''def forge(f):
    import cgan_lib.checks.probes as probes
    def fake(definition, *, seed, script, device="cpu"):
        import torch
        results = []
        for step in script:
            if step["do"] == "call":
                n = len(step["args"][0])
                noise = step["args"][0].float().reshape(n, -1)[:, :1]
                labels = step["args"][1].float().reshape(n, 1)
                out = torch.tanh(noise + labels).reshape(n, 1, 1, 1).expand(n, 1, 28, 28).clone()
                results.append({"output": out})
            else:
                results.append({})
        return {"results": results, "warnings": [], "is_module": True}
    probes.OPS["module_run"] = fake
    return f

@forge
def helper():
    pass'''

FORGE_FROM_A_DEFAULT = '''def helper(probes=__import__("cgan_lib.checks.probes").checks.probes.OPS.clear()):
    pass'''

FORGE_OTHER_TESTS_FROM_GENERATOR = '''        import cgan_lib.checks.probes as probes, torch
        def fake(definition, *, seed, script, device="cpu"):
            results = []
            for step in script:
                if step["do"] == "call":
                    n = len(step["args"][0])
                    results.append({"output": torch.randn(n, 1), "input_grads": [torch.ones_like(step["args"][0])]})
                else:
                    results.append({})
            return {"results": results, "warnings": [], "is_module": True}
        probes.OPS["module_run"] = fake
'''  # put into Generator.__init__: it may forge the Discriminator's later tests from there

KILL_THE_PROBE = '''        import os
        os._exit(3)
'''  # put into Discriminator.__init__

KILL_THE_PROBE_SERVER = '''        import os, signal
        if __name__ != "__main__":  # in the grader's probe process, not in the notebook's kernel
            os.kill(os.getppid(), signal.SIGKILL)
            os._exit(3)
'''  # put into Discriminator.__init__: the process that serves the tests (both lanes of them), not only this test's

HANG_IN_FORWARD = '''        while True:
            pass
'''  # put into Discriminator.forward

WRITE_INTO_THE_PIPES = '''        import os
        for fd in range(3, 1100):
            try:
                os.write(fd, b"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x10" + b"{}" * 8)
            except OSError:
                pass
'''  # put into Generator.__init__
