"""Documentation that runs: the README's Python blocks and the docstring examples."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import gpucal

README = Path(__file__).resolve().parents[1] / "README.md"
# gpucal._cuda imports CuPy at import time (covered by the backend tests); __main__ runs the CLI.
MODULES = sorted(m.name for m in pkgutil.walk_packages(gpucal.__path__, "gpucal.")
                 if not m.name.startswith(("gpucal._cuda", "gpucal.__main__")))


@pytest.mark.skipif(not README.exists(), reason="README.md is not shipped with the package")
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
