"""newsletter: a multilingual mailing-list manager with double opt-in, batched SMTP sending and
one-click unsubscribe.

The public API is what `__all__` names: the installation (`Newsletter`: configuration, store,
clock and secret, wired once), its configuration (`Config`, `load_config`) and the error tree
(every name of `errors.__all__`, re-exported from there, not listed twice). The use cases live
in the packages by concept (`people.subscriptions`, `sending.launch`, `sending.actions`,
`bounces.rules`, …); docs/architecture.md maps them.
`Newsletter` is imported on first use, so that naming a configuration or an error loads no
database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .config import Config, load_config
from .errors import *  # the error tree, exactly as errors.__all__ names it

if TYPE_CHECKING:
    from .installation import Newsletter

__all__ = ["Config", "Newsletter", "load_config"]
__all__ += errors.__all__


def __getattr__(name: str) -> Any:
    if name == "Newsletter":
        from .installation import Newsletter

        return Newsletter
    raise AttributeError(f"module 'newsletter' has no attribute {name!r}")
