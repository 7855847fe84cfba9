"""The type stubs describe the runtime: every class, method, property and function in
the ``.pyi`` files exists on the module, and every public runtime name is stubbed and
documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib

import pytest

import quantcore as qc

PACKAGE = pathlib.Path(qc.__file__).parent
MODULES = ["quantcore", "quantcore.features", "quantcore.metrics", "quantcore.normalize", "quantcore.report", "quantcore.sample"]


def stub_of(module: str) -> ast.Module:
    name = "__init__" if module == "quantcore" else module.split(".")[-1]
    return ast.parse((PACKAGE / f"{name}.pyi").read_text())


@pytest.mark.parametrize("module_name", MODULES)
def test_stubbed_names_exist_at_runtime(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for node in stub_of(module_name).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assert hasattr(module, node.name), f"{module_name}.{node.name} is stubbed but missing"
        if isinstance(node, ast.ClassDef):
            cls = getattr(module, node.name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and not member.name.startswith("__"):
                    assert hasattr(cls, member.name), f"{node.name}.{member.name} is stubbed but missing"


@pytest.mark.parametrize("module_name", MODULES)
def test_public_runtime_names_are_stubbed_and_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    stubbed = set()
    for node in stub_of(module_name).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stubbed.add(node.name)
        elif isinstance(node, (ast.AnnAssign,)) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
        elif isinstance(node, ast.Assign):
            stubbed.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            stubbed.update(alias.asname or alias.name for alias in node.names)
    for name in getattr(module, "__all__", []):
        assert name in stubbed, f"{module_name}.{name} is public but not stubbed"
        value = getattr(module, name)
        if inspect.isclass(value) or callable(value):
            assert (value.__doc__ or "").strip(), f"{module_name}.{name} has no docstring"
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if not attr.startswith("_") and callable(member):
                        assert (member.__doc__ or "").strip(), f"{name}.{attr} has no docstring"
