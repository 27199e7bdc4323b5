#!/usr/bin/env bash
# slurm-lab.sh - a single-host Slurm 22.05 "lab" cluster for hpctune's tests (Debian 12 packages).
#
#   munged + [MariaDB + slurmdbd] + slurmctld + 2 slurmd (simulated nodes n1, n2; 4 CPUs, 8000 MB and
#   2 fake GPUs each), partitions debug (default), preempt (requeue-preemptable, GraceTime=5) and
#   urgent (PriorityTier=10, preempts `preempt`).
#   Everything (config, munge key and socket, state, spool, logs, pid files, database) lives under
#   $SLURM_LAB_DIR. The configs are also copied to /etc/slurm, so plain sbatch/squeue and submitit
#   work without SLURM_CONF.
#
# Usage: scripts/slurm-lab.sh COMMAND
#   install [PKG...]  install the missing Debian packages (plus any PKG given), nothing else;
#             Open MPI and libpmix-dev are among them: `srun --mpi=pmix` runs MPI trials across n1, n2
#   up        install what is missing, then start whatever is not running (idempotent). If the
#             generated config differs from the running one, the slurm daemons are restarted;
#             job state is kept (e.g. SLURM_LAB_ACCOUNTING=0 scripts/slurm-lab.sh up).
#   down      cancel all jobs, stop the lab daemons (only the pids in our pid files), keep state
#   restart   down + up
#   status    show which lab daemons run and `sinfo`; exit 0 only if the lab is fully up
#   env       print `export SLURM_CONF=...` and the Open MPI settings the simulated nodes need
#             (use: eval "$(scripts/slurm-lab.sh env)")
#   purge     down + delete $SLURM_LAB_DIR (job ids restart at 1)
#
# Knobs (environment; `up` builds the config from these every time, unset = default):
#   SLURM_LAB_DIR=/tmp/hpctune-slurmlab
#   SLURM_LAB_ACCOUNTING=1        1: MariaDB + slurmdbd (sacct works); 0: accounting_storage/none
#   SLURM_LAB_CGROUP=auto         1: proctrack/cgroup + task/cgroup (memory limits, OUT_OF_MEMORY);
#                                 auto: 1 if /sys/fs/cgroup/memory is a writable cgroup-v1 mount
#   SLURM_LAB_MAX_ARRAY_SIZE=100001  SLURM_LAB_MAX_JOB_COUNT=200000
#   SLURM_LAB_NODES=2 SLURM_LAB_CPUS=4 SLURM_LAB_MEM_MB=8000 SLURM_LAB_GPUS=2 (per node)
#   SLURM_LAB_DEF_MEM_PER_CPU=1000  (MB per allocated CPU for jobs without --mem)
#   SLURM_LAB_CRED_EXPIRE=5       requeued jobs are held this long + 1 s (Slurm's default is 120;
#                                 5 is the least Slurm accepts: the tests' requeues wait 6 s)
#   SLURM_LAB_GRACE_TIME=5        GraceTime of the preempt partition (USR1 at preemption, SIGTERM after)
#   SLURM_LAB_SCHED=sched_interval=2,bf_interval=1,batch_sched_delay=0   (SchedulerParameters)
#   SLURM_LAB_PORT_BASE=6817      slurmctld; slurmdbd +2, MariaDB +3, slurmd n1.. +4..
#   SLURM_LAB_INSTALL_ETC=1       copy the configs to /etc/slurm
#   SLURM_LAB_EXTRA_CONF=         extra lines appended to slurm.conf
# A second, throwaway lab can run beside the main one: other SLURM_LAB_DIR and SLURM_LAB_PORT_BASE,
# SLURM_LAB_INSTALL_ETC=0 and SLURM_LAB_CGROUP=0 (its n1/n2 would share the main lab's cgroups).
set -euo pipefail

LAB=${SLURM_LAB_DIR:-/tmp/hpctune-slurmlab}
ACCT=${SLURM_LAB_ACCOUNTING:-1}
CGROUP=${SLURM_LAB_CGROUP:-auto}
NODES=${SLURM_LAB_NODES:-2}
CPUS=${SLURM_LAB_CPUS:-4}
MEM=${SLURM_LAB_MEM_MB:-8000}
GPUS=${SLURM_LAB_GPUS:-2}
DEF_MEM=${SLURM_LAB_DEF_MEM_PER_CPU:-1000}
MAX_ARRAY=${SLURM_LAB_MAX_ARRAY_SIZE:-100001}
MAX_JOBS=${SLURM_LAB_MAX_JOB_COUNT:-200000}
CRED_EXPIRE=${SLURM_LAB_CRED_EXPIRE:-5}
GRACE_TIME=${SLURM_LAB_GRACE_TIME:-5}
SCHED=${SLURM_LAB_SCHED-sched_interval=2,bf_interval=1,batch_sched_delay=0}
PORT=${SLURM_LAB_PORT_BASE:-6817}
INSTALL_ETC=${SLURM_LAB_INSTALL_ETC:-1}
EXTRA=${SLURM_LAB_EXTRA_CONF:-}
DB_PASS=slurmlabpw

case $ACCT in 0 | 1) ;; *) echo "SLURM_LAB_ACCOUNTING must be 0 or 1, got '$ACCT'" >&2; exit 2 ;; esac
if [[ $CGROUP == auto ]]; then
  if grep -qs ' /sys/fs/cgroup/memory cgroup ' /proc/mounts && [[ -w /sys/fs/cgroup/memory ]]; then CGROUP=1; else CGROUP=0; fi
fi

CONF=$LAB/etc/slurm.conf
MSOCK=$LAB/munge/munge.socket.2
export SLURM_CONF=$CONF

log() { printf '[slurm-lab %(%T)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ Debian packages
SLURM_PKGS=(slurmctld slurmd slurm-client munge)
ACCT_PKGS=(slurmdbd mariadb-server)
# MPI trials: Open MPI, and libpmix-dev, whose unversioned libpmix.so Slurm's mpi/pmix plugin dlopens
# (without it `srun --mpi=pmix` fails with "can not load PMIx library")
MPI_PKGS=(openmpi-bin libpmix-dev)
# The simulated nodes share one host: Open MPI's shared-memory transport (vader) crashes across
# "nodes", so ranks talk TCP over loopback. `env` prints these; the tests set them.
MPI_ENV=(OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo)

# missing_pkgs PKG... : print the packages that are not installed
missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# apt_install PKG... : install with apt-get; `apt-get update` only if a package has no candidate
# (empty or stale lists) or the first attempt fails (e.g. 404 for an outdated list).
apt_install() {
  local p need_update=0 policy_added=0 rc=0
  for p in "$@"; do
    apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' || need_update=1
  done
  # no daemon may be started by the postinst scripts (munge, mariadb): we run our own
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local install=(apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 "$@")
  if ((need_update)); then log "apt-get update"; apt-get update -q || rc=$?; fi
  if ((rc == 0)); then
    log "apt-get install $*"
    if ! "${install[@]}"; then
      log "apt-get install failed; running apt-get update and retrying once"
      { apt-get update -q && "${install[@]}"; } || rc=$?
    fi
  fi
  ((policy_added)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "installing $* failed"
}

cmd_install() {
  local pkgs=("${SLURM_PKGS[@]}" "${MPI_PKGS[@]}" "$@") missing
  [[ $ACCT == 1 ]] && pkgs+=("${ACCT_PKGS[@]}")
  missing=$(missing_pkgs "${pkgs[@]}" | paste -sd' ' -)
  [[ -z $missing ]] && return
  command -v apt-get >/dev/null || die "missing packages ($missing) and no apt-get"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  apt_install $missing
  log "installed $missing in $((SECONDS - t0)) s"
}

# slurmd_predates_pmix : a running slurmd started before libpmix-dev was installed; it cannot load
# PMIx, and `srun --mpi=pmix` launches hang (_send_slurmstepd_init failed) until it restarts
slurmd_predates_pmix() {
  local lib f pid installed age
  lib=$(compgen -G '/usr/lib/*/pmix2/lib/libpmix.so' | head -n 1) || return 1
  installed=$(stat -c %Z "$lib")  # the symlink's own ctime: when dpkg created it
  for f in "$LAB"/run/slurmd.*.pid; do
    alive "$f" slurmd || continue
    pid=$(<"$f")
    age=$(ps -o etimes= -p "$pid" | tr -d ' ')
    [[ $age =~ ^[0-9]+$ ]] && (($(date +%s) - age < installed)) && return 0
  done
  return 1
}

# ------------------------------------------------------------------ process helpers
# alive PIDFILE NAME : the pid in PIDFILE runs and its command line contains NAME
alive() {
  local f=$1 want=$2 pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$want"
}

# stop_pidfile PIDFILE NAME [TIMEOUT_S] : SIGTERM, wait, then SIGKILL; only ever our own pid
stop_pidfile() {
  local f=$1 want=$2 t=${3:-30} pid i
  if alive "$f" "$want"; then
    pid=$(<"$f")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
    if [[ -e /proc/$pid ]]; then
      log "$want ($pid) ignored SIGTERM for ${t}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    log "stopped $want (pid $pid)"
  fi
  rm -f "$f"
}

# wait_until SECONDS DESCRIPTION CMD... : poll CMD every 0.1 s
wait_until() {
  local t=$1 what=$2
  shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timeout (${t}s) waiting for $what"
    sleep 0.1
  done
}

# ------------------------------------------------------------------ configuration
gen_slurm_conf() {
  local host last_port=$((PORT + 4 + NODES - 1))
  host=$(hostname -s)
  cat <<EOF
# generated by scripts/slurm-lab.sh - do not edit (set SLURM_LAB_* and re-run \`up\`)
ClusterName=lab
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# private munged; cred_expire is also how long a requeued job is held (Slurm's default: 120 s)
AuthInfo=socket=$MSOCK,cred_expire=$CRED_EXPIRE
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool/%n
SlurmctldPidFile=$LAB/run/slurmctld.pid
SlurmdPidFile=$LAB/run/slurmd.%n.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.%n.log
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 4))
MailProg=/bin/true
# per-node TmpFS: the simulated nodes share one /tmp (mpi/pmix collides there)
TmpFS=$LAB/tmp/%n
EOF
  if [[ $CGROUP == 1 ]]; then
    printf '%s\n' ProctrackType=proctrack/cgroup TaskPlugin=task/cgroup
  else
    printf '%s\n' ProctrackType=proctrack/linuxproc TaskPlugin=task/none
  fi
  cat <<EOF
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
SchedulerType=sched/backfill
${SCHED:+SchedulerParameters=$SCHED}
MaxArraySize=$MAX_ARRAY
MaxJobCount=$MAX_JOBS
MinJobAge=300
ReturnToService=2
# config_overrides: declare 4 CPUs per node on a 2-core host
SlurmdParameters=config_overrides
JobRequeue=1
KillWait=5
MessageTimeout=10
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# at preemption send the job's --signal (submitit: USR2) instead of SIGTERM
SlurmctldParameters=preempt_send_user_signal
EOF
  if [[ $ACCT == 1 ]]; then
    cat <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# munge socket for connections to slurmdbd (not taken from AuthInfo)
AccountingStoragePass=$MSOCK
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
EOF
  else
    printf '%s\n' AccountingStorageType=accounting_storage/none JobAcctGatherType=jobacct_gather/none
  fi
  cat <<EOF
JobCompType=jobcomp/none
NodeName=n[1-$NODES] NodeHostname=$host NodeAddr=127.0.0.1 Port=[$((PORT + 4))-$last_port] CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug   Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1  PreemptMode=OFF
PartitionName=preempt Nodes=ALL Default=NO  MaxTime=INFINITE State=UP PriorityTier=1  PreemptMode=REQUEUE GraceTime=$GRACE_TIME
PartitionName=urgent  Nodes=ALL Default=NO  MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
  [[ -z $EXTRA ]] || printf '%s\n' "$EXTRA"
}

gen_gres_conf() {  # node-local indices: every node has nvidia0..GPUS-1 as seen by its jobs
  local i a
  for ((i = 1; i <= NODES; i++)); do
    a=$(((i - 1) * GPUS))
    if ((GPUS == 1)); then echo "NodeName=n$i Name=gpu File=$LAB/fakegpu/nvidia$a"
    elif ((GPUS > 1)); then echo "NodeName=n$i Name=gpu File=$LAB/fakegpu/nvidia[$a-$((a + GPUS - 1))]"; fi
  done
}

gen_cgroup_conf() {
  echo "CgroupPlugin=autodetect"
  echo "IgnoreSystemd=yes"
  if [[ $CGROUP == 1 ]]; then
    # fake GPUs (no device cgroup) and 4 declared CPUs on fewer real cores
    printf '%s\n' ConstrainRAMSpace=yes ConstrainSwapSpace=no ConstrainDevices=no ConstrainCores=no
  fi
}

gen_slurmdbd_conf() {
  cat <<EOF
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$LAB/run/slurmdbd.pid
LogFile=$LAB/log/slurmdbd.log
StorageType=accounting_storage/mysql
# TCP to our MariaDB; "localhost" would mean the default /run/mysqld socket
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
}

# write_if_changed FILE MODE < content : exit status 0 if FILE changed
write_if_changed() {
  local f=$1 mode=$2 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -f $f ]] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$f"
}

# ------------------------------------------------------------------ components
check_cgroupfs() {
  # slurmd 22.05 initialises a cgroup plugin even with proctrack/linuxproc + task/none
  mountpoint -q /sys/fs/cgroup 2>/dev/null && return
  log "/sys/fs/cgroup is not mounted (slurmd needs it); trying to mount cgroup2 there"
  mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null \
    || die "/sys/fs/cgroup is not mounted and mounting it failed; in a container, bind-mount /sys/fs/cgroup"
}

start_munge() {
  # the directory must be world-executable, or non-root users cannot reach the socket
  mkdir -p "$LAB/munge"
  chmod 755 "$LAB/munge"
  if [[ ! -s $LAB/munge/munge.key ]]; then
    if [[ -s /etc/munge/munge.key ]]; then cp /etc/munge/munge.key "$LAB/munge/munge.key"
    else dd if=/dev/urandom of="$LAB/munge/munge.key" bs=1024 count=1 status=none; fi
    chmod 400 "$LAB/munge/munge.key"
  fi
  alive "$LAB/munge/munged.pid" munged && return
  rm -f "$MSOCK" "$MSOCK.lock"
  # --force: root, with the key and socket below a world-writable /tmp
  munged --force --socket="$MSOCK" --key-file="$LAB/munge/munge.key" \
    --pid-file="$LAB/munge/munged.pid" --seed-file="$LAB/munge/munged.seed" \
    --log-file="$LAB/log/munged.log" 2>>"$LAB/log/munged.log" 9>&- || die "munged failed, see $LAB/log/munged.log"
  wait_until 10 munged sh -c "munge -n -S '$MSOCK' | unmunge -S '$MSOCK'"
  log "munged up"
}

start_accounting() {  # private MariaDB on 127.0.0.1:PORT+3 (data in $LAB/mysql), then slurmdbd
  local d=$LAB/mysql sock=$LAB/mysql/mysqld.sock
  mkdir -p "$d"
  if [[ ! -d $d/data/mysql ]]; then
    rm -rf "$d/data"
    mariadb-install-db --user=root --datadir="$d/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$LAB/log/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed, see $LAB/log/mariadb-install.log"
  fi
  if ! alive "$d/mysqld.pid" mariadbd; then
    cat >"$d/my.cnf" <<EOF
[mysqld]
user=root
datadir=$d/data
socket=$sock
pid-file=$d/mysqld.pid
port=$((PORT + 3))
bind-address=127.0.0.1
skip-name-resolve
log-error=$LAB/log/mariadb.log
innodb_buffer_pool_size=256M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
EOF
    (setsid mariadbd --defaults-file="$d/my.cnf" </dev/null >>"$LAB/log/mariadb.log" 2>&1 9>&- &)
    wait_until 60 mariadb mariadb-admin --socket="$sock" -uroot ping
    mariadb --socket="$sock" -uroot <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
    log "mariadb up"
  fi
  if ! alive "$LAB/run/slurmdbd.pid" slurmdbd; then
    slurmdbd 9>&- || die "slurmdbd failed, see $LAB/log/slurmdbd.log"
    wait_until 60 slurmdbd sacctmgr -n show cluster
    log "slurmdbd up"
  fi
  # the cluster must be registered before slurmctld starts, or its jobs are not recorded
  sacctmgr -n -P show cluster format=cluster | grep -qx lab || sacctmgr -i add cluster lab >/dev/null
}

nodes_not_ready() {  # print the nodes that cannot run jobs (down, drained, not responding...)
  sinfo -h -N -p debug -o '%N %t' 2>/dev/null \
    | awk '$2 !~ /^(idle|mix|alloc|comp|plnd|resv)[-$]?$/ {print $1}' | sort -u | paste -sd, -
}

start_slurm() {
  if ! alive "$LAB/run/slurmctld.pid" slurmctld; then
    slurmctld -f "$CONF" 9>&- || { tail -5 "$LAB/log/slurmctld.log" >&2; die "slurmctld failed to start"; }
    wait_until 30 slurmctld scontrol ping
    log "slurmctld up"
  fi
  local i started=()
  for ((i = 1; i <= NODES; i++)); do
    alive "$LAB/run/slurmd.n$i.pid" slurmd && continue
    slurmd -f "$CONF" -N "n$i" 9>&- || { tail -5 "$LAB/log/slurmd.n$i.log" >&2; die "slurmd n$i failed to start"; }
    started+=("n$i")
  done
  ((${#started[@]} == 0)) || log "slurmd up: ${started[*]}"
  # nodes return to service by themselves (ReturnToService=2); resume any left DOWN/DRAINED
  local bad end=$((SECONDS + 30)) tries=0
  while bad=$(nodes_not_ready) && [[ -n $bad || -z $(sinfo -h -o %D 2>/dev/null) ]]; do
    ((SECONDS < end)) || die "nodes not ready: ${bad:-none listed} (see $LAB/log/slurmd.*.log)"
    if ((++tries % 20 == 0)) && [[ -n $bad ]]; then scontrol update nodename="$bad" state=resume 2>/dev/null || true; fi
    sleep 0.1
  done
  log "ready: $(sinfo -h -p debug -o '%D nodes %t' | paste -sd' ' -), accounting=$ACCT cgroup=$CGROUP, SLURM_CONF=$CONF"
}

stop_slurm_daemons() {
  local f
  for f in "$LAB"/run/slurmd.*.pid; do
    [[ -e $f ]] && stop_pidfile "$f" slurmd &
  done
  stop_pidfile "$LAB/run/slurmctld.pid" slurmctld &
  wait
}

cancel_all_jobs() {
  scontrol ping >/dev/null 2>&1 || return 0
  local u
  for u in $(squeue -h -o %u 2>/dev/null | sort -u); do scancel -u "$u" || true; done
  for _ in $(seq 100); do [[ -z $(squeue -h -o %A 2>/dev/null) ]] && break; sleep 0.2; done
}

# serialise up/down/purge (e.g. two test sessions switching accounting at the same time);
# every daemon is started with `9>&-` so that it does not inherit (and keep) the lock
lock_lab() {
  mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock -w 300 9 || die "another slurm-lab.sh has held $LAB/.lock for 300 s"
}

need_root() {
  ((EUID == 0)) && return
  command -v sudo >/dev/null || die "'$1' must run as root"
  exec sudo --preserve-env "$0" "$@"
}

# ------------------------------------------------------------------ commands
cmd_up() {
  cmd_install
  check_cgroupfs
  mkdir -p "$LAB"/{etc,state,spool,log,run,fakegpu}
  chmod 755 "$LAB"
  local i changed=0
  for ((i = 1; i <= NODES; i++)); do mkdir -p "$LAB/tmp/n$i" "$LAB/spool/n$i"; done
  chmod 1777 "$LAB"/tmp/n*
  for ((i = 0; i < NODES * GPUS; i++)); do
    [[ -e $LAB/fakegpu/nvidia$i ]] || mknod "$LAB/fakegpu/nvidia$i" c 195 "$i" 2>/dev/null || touch "$LAB/fakegpu/nvidia$i"
  done
  gen_slurm_conf | write_if_changed "$CONF" 644 && changed=1
  gen_gres_conf | write_if_changed "$LAB/etc/gres.conf" 644 && changed=1
  gen_cgroup_conf | write_if_changed "$LAB/etc/cgroup.conf" 644 && changed=1
  # slurmdbd reads slurmdbd.conf next to slurm.conf; it must be 0600
  gen_slurmdbd_conf | write_if_changed "$LAB/etc/slurmdbd.conf" 600 || true
  if [[ $INSTALL_ETC == 1 ]]; then
    mkdir -p /etc/slurm
    cp -f "$CONF" "$LAB/etc/gres.conf" "$LAB/etc/cgroup.conf" /etc/slurm/
    install -m 600 "$LAB/etc/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  fi
  # slurmd loads the PMIx library at start: one older than libpmix-dev is restarted, once
  slurmd_predates_pmix && changed=1
  if ((changed)) && { alive "$LAB/run/slurmctld.pid" slurmctld || compgen -G "$LAB/run/slurmd.*.pid" >/dev/null; }; then
    log "config changed: restarting slurmctld and slurmd (job state is kept)"
    stop_slurm_daemons
  fi
  start_munge
  # with accounting off, a running slurmdbd/MariaDB is left alone (harmless; switching back is faster)
  [[ $ACCT == 1 ]] && start_accounting
  start_slurm
}

cmd_down() {
  [[ -d $LAB ]] || { log "nothing to stop ($LAB does not exist)"; return 0; }
  cancel_all_jobs
  stop_slurm_daemons
  stop_pidfile "$LAB/run/slurmdbd.pid" slurmdbd
  stop_pidfile "$LAB/mysql/mysqld.pid" mariadbd 60
  stop_pidfile "$LAB/munge/munged.pid" munged
  log "down (state kept in $LAB)"
}

cmd_status() {
  local ok=0 entry f name
  for entry in "$LAB/munge/munged.pid:munged" "$LAB/mysql/mysqld.pid:mariadbd" "$LAB/run/slurmdbd.pid:slurmdbd" \
    "$LAB/run/slurmctld.pid:slurmctld" "$LAB"/run/slurmd.n*.pid; do
    f=${entry%%:*} name=${entry##*:}
    [[ $f == */slurmd.n*.pid ]] && name=slurmd
    if alive "$f" "$name"; then echo "up   $name pid $(<"$f")"
    elif [[ -e $f ]]; then echo "DEAD $name ($f)"; ok=1; fi
  done
  if [[ -f $CONF ]]; then
    grep -q '^AccountingStorageType=accounting_storage/slurmdbd' "$CONF" && echo "accounting: on" || echo "accounting: off"
  fi
  if scontrol ping >/dev/null 2>&1; then sinfo; else echo "slurmctld: not responding"; ok=1; fi
  [[ -z $(nodes_not_ready) ]] || ok=1
  return $ok
}

cmd=${1:-}
case $cmd in
  install) need_root "$@"; shift; cmd_install "$@" ;;
  up) need_root "$@"; lock_lab; cmd_up ;;
  down) need_root "$@"; [[ -d $LAB ]] && lock_lab; cmd_down ;;
  restart) need_root "$@"; lock_lab; cmd_down; cmd_up ;;
  purge) need_root "$@"; [[ -d $LAB ]] && lock_lab; cmd_down; rm -rf "$LAB"; log "purged $LAB" ;;
  status) cmd_status ;;
  env) printf 'export SLURM_CONF=%q\nexport SLURM_LAB_DIR=%q\n' "$CONF" "$LAB"; printf 'export %s\n' "${MPI_ENV[@]}" ;;
  *) sed -n '2,/^set -e/{/^set -e/d;p}' "$0"; exit 2 ;;
esac
