"""Where the data shipped with the product is: templates and the example issues.

In a checkout (and an editable install) they are the repository's `templates/` and `examples/`;
in an installed wheel, the copies the build put in `newsletter/_data/`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_path", "template_folders", "find_template_file"]

_PACKAGED = Path(__file__).resolve().parent / "_data"
_CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_path(name: str) -> Path:
    """The folder `name` ("templates" or "examples") as installed, else as in the checkout."""
    packaged = _PACKAGED / name
    return packaged if packaged.is_dir() else _CHECKOUT / name


def template_folders(folder: Path | str | None) -> tuple[Path, ...]:
    """Where templates, catalogues, consent texts and static files are looked for, first found
    wins: `folder` (an installation's templates_dir, which may hold only what it changes), then
    the shipped templates."""
    shipped = shipped_path("templates")
    if not folder or Path(folder).resolve() == shipped.resolve():
        return (shipped,)
    return (Path(folder), shipped)


def find_template_file(folder: Path | str | None, relative: str) -> Path | None:
    """The first `relative` path (a file or a folder) that exists in `template_folders(folder)`."""
    for base in template_folders(folder):
        if (base / relative).exists():
            return base / relative
    return None
