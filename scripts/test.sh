#!/usr/bin/env bash
# scripts/test.sh - THE test command: from a fresh clone on a fresh Debian 12 machine (as root,
# or with sudo) to a full test run.
#
#   1. Debian packages (Slurm, munge, MariaDB, slurmdbd; python3-venv if needed), if missing
#   2. .venv (created if missing) + pip install -e '.[test]'
#   3. the Slurm lab: scripts/slurm-lab.sh up (left running afterwards)
#   4. python -m pytest "$@"; without arguments the whole suite: the tests without the lab
#      (-m "not slurm") beside the lab's (-m slurm), two pytest runs at once; exits with the
#      first failing run's exit code
#
# Timings of every phase are printed at the end. With CI=true, Slurm tests fail (instead of
# being skipped) when the lab is down. Lab knobs (SLURM_LAB_*) are passed through; see
# scripts/slurm-lab.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
VENV=${HPCTUNE_VENV:-$REPO/.venv}
LAB_SH=$REPO/scripts/slurm-lab.sh

log() { printf '[test.sh %(%T)T] %s\n' -1 "$*" >&2; }
now_ms() { date +%s%3N; }
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }  # ms -> "12.3"

PHASES=()
T_START=$(now_ms)
T_PHASE=$T_START
phase_done() {  # phase_done NAME : record the time since the previous phase ended
  local t
  t=$(now_ms)
  PHASES+=("$(printf '%-12s %7s s' "$1" "$(secs $((t - T_PHASE)))")")
  log "$1 done in $(secs $((t - T_PHASE))) s"
  T_PHASE=$t
}
# shellcheck disable=SC2317  # called by the EXIT trap
report() {
  local rc=$? p
  # the run beside the lab tests (phase 4) that is still going when this script is stopped
  if [[ -n ${BESIDE_PID:-} ]]; then kill "$BESIDE_PID" 2>/dev/null || true; fi
  echo "------------------------------------------------------------ timings" >&2
  for p in "${PHASES[@]}"; do echo "  $p" >&2; done
  printf '  %-12s %7s s   (exit code %d)\n' total "$(secs $(($(now_ms) - T_START)))" "$rc" >&2
}
trap report EXIT

# ------------------------------------------------------------------ 1. Debian packages
log "phase 1: Debian packages"
extra=(fuse3)  # tests/e2e/test_weak_filesystem.py mounts a FUSE filesystem (libfuse3, fusermount3)
extra+=(chromium)  # tests/e2e/test_report_browser.py opens the HTML report in it (playwright)
extra+=(strace)  # tests/e2e/test_driver_scale.py counts the driver's metadata operations
if [[ ! -x $VENV/bin/python ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  extra+=(python3 python3-venv)
fi
bash "$LAB_SH" install "${extra[@]}"
phase_done "packages"

# ------------------------------------------------------------------ 2. virtualenv
log "phase 2: virtualenv $VENV + pip install -e '.[test]'"
if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# torch first (the PyTorch example and the Lightning callback need it), pinned here (HPCTUNE_TORCH
# overrides the pin): pip takes the machine's CPU wheel when its find-links folder has one, else
# PyPI's default build. Installed before '.[test]', whose lightning would otherwise pull torch in.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q "${HPCTUNE_TORCH:-torch==2.13.0}"
fi
# constraints/test.txt pins every other version (regenerate with scripts/lock.sh)
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q -c constraints/test.txt \
  -e '.[test]' --config-settings editable_mode=compat
log "$("$VENV/bin/python" -c 'import sys, pytest, submitit; print(f"python {sys.version.split()[0]} ({sys.executable}), pytest {pytest.__version__}, submitit {submitit.__version__}")')"
phase_done "pip install"

# ------------------------------------------------------------------ 3. Slurm lab
log "phase 3: Slurm lab up"
bash "$LAB_SH" up
eval "$(bash "$LAB_SH" env)"
export SLURM_CONF SLURM_LAB_DIR
phase_done "lab up"

# ------------------------------------------------------------------ 4. pytest
rc=0
if (($#)); then
  log "phase 4: python -m pytest $*"
  "$VENV/bin/python" -m pytest "$@" || rc=$?
else
  # The whole suite as two runs side by side: the tests that use the Slurm lab (marked
  # ``slurm``) spend most of their time waiting for Slurm; the others (tests/unit, and the e2e
  # tests on local processes and the simulated cluster) spend CPU. Beside each other the suite
  # takes about the lab tests' time alone.
  BESIDE_LOG=$(mktemp "${TMPDIR:-/tmp}/hpctune-tests-beside.XXXXXX")
  log "phase 4: python -m pytest tests -m 'not slurm' (beside, its output at the end) and tests -m slurm"
  "$VENV/bin/python" -m pytest tests -m "not slurm" -q -p no:cacheprovider --durations=10 \
    </dev/null >"$BESIDE_LOG" 2>&1 &
  BESIDE_PID=$!
  "$VENV/bin/python" -m pytest tests -m slurm --durations=15 || rc=$?
  beside_rc=0
  wait "$BESIDE_PID" || beside_rc=$?
  BESIDE_PID=
  echo "------------------------------------------------------------ tests -m 'not slurm' (ran beside)"
  cat "$BESIDE_LOG"
  rm -f "$BESIDE_LOG"
  log "tests -m slurm: exit code $rc; tests -m 'not slurm': exit code $beside_rc"
  if ((rc == 0 || rc == 5)); then rc=$beside_rc; fi
fi
phase_done "pytest"

if ((rc != 0 && rc != 5)); then
  # help whoever reads the CI log: what did the lab look like?
  echo "------------------------------------------------------------ lab after failure" >&2
  bash "$LAB_SH" status >&2 || true
  for f in "$SLURM_LAB_DIR"/log/slurmctld.log "$SLURM_LAB_DIR"/log/slurmd.n1.log; do
    [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 25 "$f" >&2; }
  done
fi
exit "$rc"
