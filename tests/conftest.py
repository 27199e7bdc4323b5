"""Shared fixtures and helpers for hpctune's tests.

Tests marked ``@pytest.mark.slurm`` run against the Slurm lab of ``scripts/slurm-lab.sh``. Every
such test gets the session fixture ``slurm_lab`` automatically: it checks once that the lab is up
(``scontrol ping``; ``sinfo`` lists n1 and n2 in a usable state). When it is not, the tests
FAIL if ``CI=true`` and are SKIPPED otherwise.

Helpers (plain functions, also available as methods of the ``slurm_lab`` fixture):

* ``run(cmd, ...) -> CompletedProcess``: a command as a list, or a string for ``bash -c``
* ``wait_for(predicate, timeout, ...)``: poll until the predicate returns something truthy
* ``unique_name(prefix)``: an experiment name unique to this run (its jobs are ``hpctune-<name>``)
* ``sbatch(*args, script=None, wrap=None) -> job id``
* ``squeue_states(jobid) -> {"123": "RUNNING"}`` / ``{"123_0": "COMPLETED", ...}``
* ``wait_job(jobid, timeout) -> states`` once no task of the job is pending/running any more
* ``job_info(jobid) -> dict`` from ``scontrol show job -o`` (``Restarts``, ``JobState``, ...)
* ``sacct_states(jobid) -> [(jobid, state), ...]`` including earlier incarnations (``sacct -D``)
* ``lab_accounting(enabled)`` / ``lab_config(**knobs)``: context managers that re-run
  ``slurm-lab.sh up`` with another config and restore the previous one afterwards
* ``as_background_job(env) -> dict``: ``subprocess.Popen`` arguments that start a command as
  ``nohup CMD <&- &`` from a script would (signals ignored, no terminal, stdin closed)

The suite does not depend on the shell that runs it: the session fixture
``_default_signal_dispositions`` gives this process (and so every child a test starts) the
default handling of the signals that a background shell or ``nohup`` leaves ignored;
tests/unit/test_signal_dispositions.py and tests/e2e/test_started_in_background.py check that
the product copes when they stay ignored, as a user's ``nohup ... &`` leaves them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB_SCRIPT = REPO_ROOT / "scripts" / "slurm-lab.sh"
LAB_DIR = Path(os.environ.get("SLURM_LAB_DIR", "/tmp/hpctune-slurmlab"))
LAB_CONF = LAB_DIR / "etc" / "slurm.conf"
LAB_NODES = ("n1", "n2")
LAB_DOWN = "Slurm lab is down: run scripts/slurm-lab.sh up"

# Plain sbatch/squeue and submitit in this process (and in the jobs it submits) use the lab.
os.environ.setdefault("SLURM_CONF", str(LAB_CONF))
# The lab's nodes share one host: Open MPI must not use its shared-memory transport between them
# (`scripts/slurm-lab.sh env` prints the same settings).
for _name, _value in (("OMPI_MCA_pml", "ob1"), ("OMPI_MCA_btl", "self,tcp"),
                      ("OMPI_MCA_btl_tcp_if_include", "lo")):
    os.environ.setdefault(_name, _value)

# squeue states in which a job (task) may still run; anything else is final.
ACTIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED",
    "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "SPECIAL_EXIT",
    "RESV_DEL_HOLD",
})  # fmt: skip

# sinfo %t states of a node that can run jobs (not down, drained, failing or not responding)
USABLE_NODE = re.compile(r"^(idle|mix|alloc|comp|plnd|resv)[-$]?$")

T = TypeVar("T")


class SlurmError(RuntimeError):
    """A Slurm command failed in a way the caller did not ask to handle."""


# --------------------------------------------------------------------------- generic helpers
def run(
    cmd: str | Sequence[str],
    *,
    check: bool = False,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (list: exec'd; str: ``bash -c``), capture text output, never raise on rc
    unless ``check``. ``env`` is merged into ``os.environ``."""
    args = ["bash", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
    )
    if check and proc.returncode != 0:
        raise SlurmError(
            f"{args} exited with {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str | None = None,
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns something truthy; return that.

    Raises ``TimeoutError`` (naming ``what``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", "condition")
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {name}")
        time.sleep(interval)


def unique_name(prefix: str) -> str:
    """``prefix-<8 hex digits>``: an experiment (and so a Slurm job) name no other test run on
    the same lab uses, so that ``squeue -n hpctune-<name>`` sees this run's jobs only."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def as_background_job(env: dict[str, str] | None = None) -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments that start a command the way ``nohup CMD <&- &``
    from a script does: SIGINT, SIGQUIT and SIGHUP ignored (inherited SIG_IGN), no controlling
    terminal (a new session), stdin closed, no ``TERM``, a 7-column ``COLUMNS``. ``env`` is
    merged into ``os.environ``."""

    def in_the_child() -> None:
        for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        os.close(0)

    environ = {**os.environ, **(env or {}), "COLUMNS": "7"}
    environ.pop("TERM", None)
    return {"preexec_fn": in_the_child, "start_new_session": True, "env": environ}


# --------------------------------------------------------------------------- Slurm helpers
def sbatch(
    *args: str | os.PathLike[str], script: str | None = None, wrap: str | None = None
) -> str:
    """Submit with ``sbatch --parsable ARGS``; ``script`` is fed on stdin, ``wrap`` becomes
    ``--wrap``. Returns the job id (for an array: the array's job id)."""
    cmd = ["sbatch", "--parsable", *map(str, args)]
    if wrap is not None:
        cmd += ["--wrap", wrap]
    proc = run(cmd, input=script, check=True)
    return proc.stdout.strip().split(";")[0]


def squeue_states(jobid: str | int) -> dict[str, str]:
    """``{job id: state}`` of a job, or of every task of an array (``"123_4"``), finished ones
    included (slurmctld keeps them for MinJobAge=300 s). ``{}`` if Slurm does not know the id.

    Raises ``SlurmError`` if squeue fails for another reason (e.g. slurmctld restarting)."""
    proc = run(["squeue", "-h", "-r", "--states=all", "-j", str(jobid), "-o", "%i|%T"], timeout=30)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}
        raise SlurmError(f"squeue failed ({proc.returncode}): {proc.stderr.strip()}")
    states = {}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            states[job] = state
    return states


def wait_job(jobid: str | int, timeout: float = 120.0) -> dict[str, str]:
    """Wait until no task of ``jobid`` is pending or running; return ``squeue_states(jobid)``.

    A transient squeue failure (e.g. during a lab reconfiguration) is retried. Note that a job
    that Slurm requeues goes back to PENDING, so this waits for its final run."""
    last: dict[str, Any] = {}

    def finished() -> dict[str, str] | None:
        try:
            states = squeue_states(jobid)
        except SlurmError as exc:
            last["error"] = exc
            return None
        last["states"] = states
        if states and not ACTIVE_STATES.intersection(states.values()):
            return states
        return None

    try:
        return wait_for(finished, timeout, 0.25, what=f"job {jobid} to finish")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last seen: {last}") from None


def job_info(jobid: str | int) -> dict[str, str]:
    """``Key=Value`` fields of ``scontrol show job -o JOBID`` (first record), e.g.
    ``JobState``, ``Restarts``, ``NodeList``, ``Reason``."""
    out = run(["scontrol", "show", "job", "-o", str(jobid)], check=True).stdout
    first = out.splitlines()[0] if out.strip() else ""
    info = {}
    for token in first.split():
        key, sep, value = token.partition("=")
        if sep:
            info[key] = value
    return info


def sacct_states(jobid: str | int) -> list[tuple[str, str]]:
    """``[(job id, state), ...]`` from ``sacct -D -X``: one row per incarnation of the job
    (a requeued job has several). Raises ``SlurmError`` if sacct fails (accounting off)."""
    proc = run(["sacct", "-D", "-X", "-n", "-P", "-j", str(jobid), "-o", "JobID,State"], check=True)
    rows = []
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            rows.append((job, state))
    return rows


def sinfo_nodes() -> dict[str, str]:
    """``{node: compact state}`` of the lab's nodes (``idle``, ``mix``, ``alloc``, ``down*``...)."""
    proc = run(["sinfo", "-h", "-N", "-o", "%N %t"], timeout=30)
    if proc.returncode != 0:
        raise SlurmError(proc.stderr.strip() or f"sinfo exited with {proc.returncode}")
    return dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())


def lab_problem() -> str | None:
    """``None`` if the lab is up and usable, else why not."""
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():
        return f"{conf} does not exist"  # else Slurm's clients hang in configless lookups
    try:
        ping = run(["scontrol", "ping"], timeout=20)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            said = (ping.stdout + ping.stderr).strip().splitlines()
            return f"scontrol ping: {said[0] if said else ping.returncode}"
        nodes = sinfo_nodes()
    except (OSError, subprocess.SubprocessError, SlurmError) as exc:
        return f"{type(exc).__name__}: {exc}"
    missing = [n for n in LAB_NODES if n not in nodes]
    if missing:
        return f"sinfo does not list {', '.join(missing)} (has {nodes})"
    bad = {n: s for n, s in nodes.items() if n in LAB_NODES and not USABLE_NODE.match(s)}
    if bad:
        return f"nodes not usable: {bad}"
    return None


# --------------------------------------------------------------------------- reconfiguring the lab
def accounting_enabled() -> bool:
    """Whether the running lab config uses slurmdbd (i.e. ``sacct`` works)."""
    try:
        return "AccountingStorageType=accounting_storage/slurmdbd" in LAB_CONF.read_text()
    except FileNotFoundError:
        return False


def lab_up(**knobs: Any) -> None:
    """Run ``scripts/slurm-lab.sh up`` with ``SLURM_LAB_<KNOB>=value`` for each keyword
    (``accounting=False``, ``max_array_size=10``, ``extra_conf="..."``...). Knobs not given
    come from this process's environment, i.e. the defaults the lab was started with."""
    env = {}
    for key, value in knobs.items():
        if isinstance(value, bool):
            value = int(value)
        env[f"SLURM_LAB_{key.upper()}"] = str(value)
    proc = run(["bash", str(LAB_SCRIPT), "up"], env=env, timeout=300)
    if proc.returncode != 0:
        raise SlurmError(
            f"slurm-lab.sh up {env} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )


@contextlib.contextmanager
def lab_config(**knobs: Any) -> Iterator[None]:
    """Run a block on a lab reconfigured with ``knobs`` (see ``lab_up``), then restore the
    default config (accounting as it was before). Running jobs survive both restarts."""
    before = accounting_enabled()
    knobs.setdefault("accounting", before)
    lab_up(**knobs)
    try:
        yield
    finally:
        lab_up(accounting=before)


@contextlib.contextmanager
def lab_accounting(enabled: bool) -> Iterator[None]:
    """Run a block with accounting (slurmdbd) on or off, then restore the previous setting.
    A no-op if the lab already is in that state. Switching restarts slurmctld and the slurmds
    (about 3 s each way)."""
    if accounting_enabled() == enabled:
        yield
        return
    with lab_config(accounting=enabled):
        yield


# --------------------------------------------------------------------------- fixtures
#: signals that a caller may leave ignored: a background job (`cmd &` without job control)
#: ignores SIGINT and SIGQUIT, ``nohup`` SIGHUP; an ignored signal stays ignored across exec
INHERITED_IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)


def default_disposition(signum: int) -> Any:
    """What a process started from an interactive shell has: Python's KeyboardInterrupt for
    SIGINT (SIG_DFL for its children), SIG_DFL for the others."""
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


@pytest.fixture(scope="session", autouse=True)
def _default_signal_dispositions() -> Iterator[None]:
    """Signals the caller left ignored get their default handling for the session, so a
    test's child (a stand-in driver, ``sleep``) reacts to a signal as it would when the suite
    runs from a terminal; the caller's dispositions come back at the end."""
    ignored = [s for s in INHERITED_IGNORED if signal.getsignal(s) == signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, default_disposition(signum))
    yield
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)


@dataclass(frozen=True)
class SlurmLab:
    """What the ``slurm_lab`` fixture returns: paths plus the helpers above as methods."""

    dir: Path = LAB_DIR
    conf: Path = LAB_CONF
    script: Path = LAB_SCRIPT
    nodes: tuple[str, ...] = LAB_NODES

    run = staticmethod(run)
    wait_for = staticmethod(wait_for)
    sbatch = staticmethod(sbatch)
    squeue_states = staticmethod(squeue_states)
    wait_job = staticmethod(wait_job)
    job_info = staticmethod(job_info)
    sacct_states = staticmethod(sacct_states)
    accounting_enabled = staticmethod(accounting_enabled)
    accounting = staticmethod(lab_accounting)
    config = staticmethod(lab_config)
    up = staticmethod(lab_up)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def slurm_lab() -> SlurmLab:
    """The running Slurm lab. Skips (FAILS when CI=true) if it is not up."""
    problem = lab_problem()
    if problem:
        message = f"{LAB_DOWN} ({problem}; SLURM_CONF={os.environ.get('SLURM_CONF')})"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return SlurmLab()


@pytest.fixture(name="lab_accounting")
def _lab_accounting_fixture(
    slurm_lab: SlurmLab,
) -> Callable[[bool], contextlib.AbstractContextManager[None]]:
    """``with lab_accounting(False): ...``: the ``lab_accounting`` context manager, for tests
    that prefer a fixture argument (same as ``slurm_lab.accounting(False)``)."""
    return lab_accounting


@pytest.fixture(autouse=True)
def _slurm_marker_needs_lab(request: pytest.FixtureRequest) -> None:
    """Every test marked ``slurm`` uses ``slurm_lab`` (skip/fail when the lab is down)."""
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_lab")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """With CI=true a test skipped because a module could not be imported FAILS: every test
    dependency is installed by scripts/test.sh, so a missing one is a broken test command,
    not a reason to count a test that never ran."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if "could not import" in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped in CI, but a test dependency is missing: {reason}"
