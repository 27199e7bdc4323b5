"""The suite and the product do not depend on the shell that starts them (issue 21).

A background job (`cmd &` in a script, `nohup cmd &`) starts with SIGINT and SIGQUIT ignored
(SIGHUP too under nohup), and with no terminal; a new user may start the tests or a driver
that way. tests/conftest.py gives the suite's process default dispositions (so a test's
children do not inherit SIG_IGN); the product must cope without that help: see also
tests/e2e/test_started_in_background.py for a real driver and its workers.
"""

import os
import signal
import subprocess
import sys
import textwrap

from hpctune.storage.process import process_ignores
from tests.conftest import INHERITED_IGNORED, REPO_ROOT, as_background_job


def test_children_of_a_test_start_with_default_dispositions():
    """Fails when the caller ignores a signal and the session fixture did not restore it."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        ignored = [signal.Signals(s).name for s in INHERITED_IGNORED if process_ignores(child.pid, s)]
    finally:
        child.kill()
        child.wait()
    assert ignored == []


def test_process_ignores_reads_what_the_child_inherited():
    child = subprocess.Popen(["sleep", "30"], **as_background_job())
    try:
        assert process_ignores(child.pid, signal.SIGINT) and process_ignores(child.pid, signal.SIGQUIT)
        assert not process_ignores(child.pid, signal.SIGTERM)
    finally:
        child.kill()
        child.wait()
    assert not process_ignores(child.pid, signal.SIGINT)  # gone: nothing to signal anyway


DETACHED_DRIVER = """
import sys, time
from hpctune.cli.driver import install_driver_signals
install_driver_signals()
try:
    print("ready", flush=True)
    time.sleep(20)
except KeyboardInterrupt:
    print("stopped as by Ctrl+C", flush=True)
    sys.exit(0)
print("the SIGTERM was lost", flush=True)
"""


def test_the_detached_driver_stops_on_sigterm_when_started_with_sigint_ignored():
    """Its SIGTERM handler raises SIGINT (the driver's Ctrl+C): an inherited SIG_IGN for
    SIGINT must not swallow a scancel."""
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DETACHED_DRIVER)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **as_background_job())
    try:
        assert driver.stdout.readline() == "ready\n"
        driver.send_signal(signal.SIGTERM)
        out, err = driver.communicate(timeout=30)
    finally:
        driver.kill()
    assert driver.returncode == 0 and "stopped as by Ctrl+C" in out, (out, err)


def test_the_suite_passes_when_started_as_a_background_job(tmp_path):
    """Representative tests that start children, signal them and print, run by a pytest
    started as `nohup python -m pytest ... <&- &` would be: signals ignored, no terminal, stdin
    closed, no TERM, 7 columns, from another working directory."""
    selection = ["tests/unit/test_signal_dispositions.py::test_children_of_a_test_start_with_default_dispositions",
                 "tests/unit/test_cli_hardening.py::test_cancel_signals_the_driver_it_recorded",
                 "tests/unit/test_cli.py::test_version_and_help"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO_ROOT),
         "-c", str(REPO_ROOT / "pyproject.toml"), *(str(REPO_ROOT / s) for s in selection)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, **as_background_job())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 passed" in proc.stdout
    assert os.listdir(tmp_path) == []  # nothing written to the working directory
