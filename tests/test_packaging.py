"""pyproject.toml and environment.yml pin the same packages; cgan_lib holds no solution."""
import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}


def pins_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    return dict(spec.split("==") for spec in specs)


def pins_from_environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep["pip"]:
                if spec.startswith("-e"):
                    continue
                name, version = spec.split("==")
                pins[name] = version
        elif "=" in dep:
            name, version = dep.split("=")
            if name != "python":
                pins[CONDA_TO_PIP.get(name, name)] = version
    return pins


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", spec), f"not pinned: {spec!r}"


def test_pyproject_and_environment_yml_agree():
    pyproject, conda = pins_from_pyproject(), pins_from_environment_yml()
    assert set(pyproject) == set(conda), (
        f"only in pyproject.toml: {sorted(set(pyproject) - set(conda))}, "
        f"only in environment.yml: {sorted(set(conda) - set(pyproject))}")
    drift = {name: (pyproject[name], conda[name]) for name in pyproject if pyproject[name] != conda[name]}
    assert not drift, f"versions differ (pyproject.toml, environment.yml): {drift}"
    assert "python=3.11" in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]


def test_installed_versions_are_the_pinned_ones():
    for name, version in pins_from_pyproject().items():
        installed = importlib.metadata.version(name).split("+")[0]  # torch reports 2.14.1+cu130
        assert installed == version, f"{name}: pinned {version}, installed {installed}; run make venv"


SOLUTION_NAMES = {"Generator", "Discriminator", "train_step", "generate_latent_points"}


def test_cgan_lib_defines_no_part_of_the_exercise():
    for path in (ROOT / "cgan_lib").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        defined = {node.name for node in ast.walk(tree)
                   if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not defined & SOLUTION_NAMES, f"{path} defines {defined & SOLUTION_NAMES}: students import cgan_lib"
