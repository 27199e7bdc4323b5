"""Trial schedulers: pure decision logic (CONTINUE / PAUSE / STOP) from results."""

from hpctune.schedulers.trial_scheduler import Decision, FIFOScheduler, TrialScheduler

__all__ = ["Decision", "FIFOScheduler", "TrialScheduler"]
