"""The driver loop (``Controller``) and the parts it delegates to, each given only what it needs.

``controller`` keeps the loop; ``state`` the trial table and the run's state; ``launching``
creates trials and submits them within the throttles; ``paused`` asks the scheduler which
paused trials go on; ``events`` reads each trial's new events and asks the searcher, stoppers
and scheduler; ``enactor`` stops, pauses, cancels, retries and ends trials; ``exploit`` enacts
PBT's exploits; ``job_watch`` polls the backend (heartbeats, vanished jobs); ``snapshot`` saves,
restores and handles Ctrl+C; ``recovery`` is what a restore checks and clears up (damaged
files quarantine one trial); ``storage_full`` stops the run on a full disk.
"""

from hpctune.controller.controller import Controller, ControllerSettings

__all__ = ["Controller", "ControllerSettings"]
