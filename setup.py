"""Ships the data the product needs at run time inside the package.

`templates/` (mail and page templates, translations, consent texts, static files) and
`examples/` (the demo's issues) live at the top of the repository, where people edit them; a
build copies them into the wheel as `newsletter/_data/templates` and `newsletter/_data/examples`,
where `newsletter.resources` finds them once installed. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("templates", "examples")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "newsletter" / "_data"
        for name in SHIPPED:
            if (root / name).is_dir():
                shutil.copytree(root / name, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
