"""A built wheel, installed outside the checkout, carries everything the product needs to run."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the committed files (a copy of the checkout, so nothing is left in it)."""
    source = tmp_path_factory.mktemp("source")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source),
         cwd=source)
    (found,) = out.glob("newsletter-*.whl")
    return found


def test_the_demo_runs_from_a_wheel_installed_outside_the_checkout(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    # The wheel alone, with --no-deps: the libraries it needs come from this test run's environment
    # through a path entry (which, unlike site-packages, runs none of its .pth files, so the
    # editable install of the checkout stays out of sight).
    (target,) = (venv / "lib").glob("python3*/site-packages")
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel), cwd=tmp_path)
    where = _run(str(python), "-c", "import newsletter, sys; print(newsletter.__file__)", cwd=tmp_path)
    assert str(venv) in where and str(ROOT) not in where

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    output = _run(str(venv / "bin" / "newsletter"), "demo", cwd=tmp_path, env=env)
    assert "unsubscribed with one click" in output
    assert list((tmp_path / "newsletter-demo" / "eml").glob("*.eml"))
