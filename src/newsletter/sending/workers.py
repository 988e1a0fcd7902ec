"""Who holds a campaign's rows: worker ids, and telling which holders on this host are dead."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping

__all__ = ["new_worker_id", "dead_workers"]


def new_worker_id() -> str:
    """host:pid:random — lets a restarted sender on the same host see that a holder is dead."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def dead_workers(holders: Mapping[str, int]) -> list[str]:
    host = socket.gethostname()
    dead = []
    for worker in holders:
        parts = worker.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(worker)
        except PermissionError:
            pass
    return dead
