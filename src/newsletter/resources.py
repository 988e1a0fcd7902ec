"""Where the data shipped with the product is: templates and the example issues.

In a checkout (and an editable install) they are the repository's `templates/` and `examples/`;
in an installed wheel, the copies the build put in `newsletter/_data/`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_path"]

_PACKAGED = Path(__file__).resolve().parent / "_data"
_CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_path(name: str) -> Path:
    """The folder `name` ("templates" or "examples") as installed, else as in the checkout."""
    packaged = _PACKAGED / name
    return packaged if packaged.is_dir() else _CHECKOUT / name
