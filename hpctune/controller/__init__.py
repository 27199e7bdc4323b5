"""The driver loop (``Controller``) and the parts it delegates to.

``controller`` keeps the loop and enacts decisions (stop, pause, retry, finish);
``launching`` creates trials and submits them within the throttles; ``events`` reads
each trial's new events and asks the searcher, stoppers and scheduler; ``job_watch``
polls the backend (heartbeats, vanished jobs); ``snapshot`` saves, restores and handles
Ctrl+C.
"""

from hpctune.controller.controller import Controller, ControllerSettings

__all__ = ["Controller", "ControllerSettings"]
