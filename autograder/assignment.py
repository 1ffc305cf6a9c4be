"""What each assignment declares about itself (autograder/assignments/<name>.toml).

    spec = Assignment.load("cgan")
    spec.notebook, spec.prelude, spec.answers, spec.cell_timeout, spec.notebook_timeout
"""
import tomllib
from dataclasses import dataclass

from autograder.config import REPO

DECLARATIONS = REPO / "autograder" / "assignments"


@dataclass(frozen=True)
class Assignment:
    name: str
    notebook: str            # solutions/<name>/<notebook>.ipynb
    prelude: tuple           # grade_ids of the locked cells the tests build on
    answers: tuple           # names the student defines that the tests use
    cell_timeout: int
    notebook_timeout: int

    @classmethod
    def load(cls, name):
        path = DECLARATIONS / f"{name}.toml"
        if not path.exists():
            known = sorted(p.stem for p in DECLARATIONS.glob("*.toml"))
            raise ValueError(f"unknown assignment {name!r}: no {path.relative_to(REPO)} (known: {', '.join(known)})")
        data = tomllib.loads(path.read_text())
        limits = data.get("limits", {})
        return cls(name=name, notebook=data["notebook"], prelude=tuple(data["prelude"]),
                   answers=tuple(data["answers"]), cell_timeout=int(limits.get("cell_timeout", 120)),
                   notebook_timeout=int(limits.get("notebook_timeout", 600)))

    @property
    def source(self):
        return REPO / "solutions" / self.name / f"{self.notebook}.ipynb"

    @property
    def release(self):
        return REPO / "assignments" / self.name / f"{self.notebook}.ipynb"
