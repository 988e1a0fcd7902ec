"""The code is held to the lint rules pyproject.toml names (ruff): the tree is clean, and the
check does fire on a crafted bad file, so a clean result means something."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
                          cwd=REPO, capture_output=True, text=True, check=False)


def test_the_tree_is_clean() -> None:
    result = ruff("src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fires_on_an_unused_import_and_a_lambda_assignment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\nsquare = lambda x: x * x\n")
    result = ruff("--config", str(REPO / "pyproject.toml"), str(bad))
    assert result.returncode == 1
    assert "F401" in result.stdout and "E731" in result.stdout, result.stdout
