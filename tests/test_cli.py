"""The command line: ``gpucal info`` and friends."""

import subprocess
import sys
from pathlib import Path

import astropy
import numpy as np
import pytest
import scipy

import gpucal
from gpucal.cli import main


def test_info_reports_versions_backends_and_gpu(capsys, monkeypatch):
    monkeypatch.delenv("GPUCAL_DEVICE", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name, version in [("gpucal", gpucal.__version__), ("NumPy", np.__version__),
                          ("SciPy", scipy.__version__), ("astropy", astropy.__version__)]:
        assert any(line.split()[:2] == [name, version] for line in out.splitlines()), name
    assert "numpy (CPU): available" in out
    status = gpucal.gpu_status()
    if status.available:
        assert "cupy (GPU): available" in out
        assert all(d.name in out for d in status.devices) and "GiB total" in out
    else:
        assert any(line.split()[:2] == ["GPU", "none:"] and line.endswith(status.reason)
                   for line in out.splitlines())
        assert f"cupy (GPU): unavailable: {status.reason}" in out
    assert f"auto → {gpucal.resolve_device('auto')} (GPUCAL_DEVICE not set)" in out


def test_info_shows_a_bad_environment_setting_instead_of_crashing(capsys, monkeypatch):
    monkeypatch.setenv("GPUCAL_DEVICE", "tpu")
    assert main(["info"]) == 0
    assert "GPUCAL_DEVICE='tpu' → error: the GPUCAL_DEVICE environment variable must be" \
        in capsys.readouterr().out


def test_version_and_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"gpucal {gpucal.__version__}"
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2 and "COMMAND" in capsys.readouterr().err


SCRIPT = Path(sys.executable).parent / "gpucal"  # the console script of an installed gpucal


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "gpucal"],
    pytest.param([str(SCRIPT)], marks=pytest.mark.skipif(
        not SCRIPT.exists(), reason="gpucal is not installed in this environment")),
], ids=["module", "script"])
def test_runs_from_the_shell(command):
    proc = subprocess.run(command + ["info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["gpucal", gpucal.__version__]
