"""The service: the long-running process of an installation (`newsletter serve`), a face like
`cli/` and `web/`.

A supervisor (`supervisor.Service`) of asyncio tasks runs the parts chosen, each a small class
with `start()` and `stop()` (`parts`, `http`): the visitor pages with /healthz and /readyz, the
confirmation drainer, the bounce mailbox reader, welcome and catch-up mail (`routine.welcome`), the senders (campaigns sending, stopped by a
service, or with deferred rows due: `routine.carry`) and the scheduler (`routine.scheduler`).
SIGTERM finishes what is in flight and leaves everything resumable. Logs are text or JSON
lines (`logs`).
"""

from .supervisor import PART_NAMES, Service

__all__ = ["PART_NAMES", "Service"]
