"""The worker entry module: sets the broker up first, then registers every stage's actor.

``dramatiq workers.actors`` (what ``feedsync worker`` runs) imports this module.
"""

from __future__ import annotations

from schemas.settings import get_settings
from workers.logs import configure_logging
from workers.stages import setup_worker_broker

configure_logging(get_settings().log_level)
broker = setup_worker_broker()

from workers.stages import export, fetch, finalize, intake, load, parse, plan, transform  # noqa: E402  (broker first)

__all__ = ["broker", "export", "fetch", "finalize", "intake", "load", "parse", "plan", "transform"]
