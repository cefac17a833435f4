#!/usr/bin/env bash
# The SLURM test: a real single-node SLURM cluster on this machine, and the workflow submitted
# to it through profiles/slurm with the real snakemake-executor-plugin-slurm.
#
#   1. starts munged, MariaDB + slurmdbd (accounting: the plugin follows jobs with `sacct` and
#      checks the account with `sacctmgr`), slurmctld and slurmd, all from a slurm.conf written
#      here, on free ports, with their state in one folder (nothing under /etc is touched).
#      The node has one pretend GPU (a GRES backed by a character device), so the GPU rules
#      are submitted with a real `--gpus=1` and run on the CPU (tests/slurm/config.yaml sets
#      training.device: cpu, the explicit choice a GPU job without CUDA needs);
#   2. runs the DAG of tests/slurm/config.yaml (a dataset, a similarity target, two trainings,
#      two noise evaluations, one figure) locally, as the reference;
#   3. runs the download step on the "login" side (`--until download download_corruptions`,
#      localrules), then the DAG again through `--profile profiles/slurm` as tracked, the
#      account and partition from SBATCH_ACCOUNT/SBATCH_PARTITION/SIMREG_GPU_PARTITION,
#      and `scancel`s the threshold training once its checkpoint has been replaced (epoch >= 1);
#   4. checks (tests/slurm/check_slurm_run.py): every non-local job went through sbatch with the
#      CPUs, memory, runtime and GPUs its rule asks for (as slurmdbd recorded them), the killed
#      job was resubmitted (attempt 2: twice the memory and runtime) and resumed from its
#      checkpoint, and every output equals the local run's (weights, CSVs, HDF5 arrays).
#
# Needs root and Debian's slurm-wlm, slurmdbd, munge and mariadb-server (.ci/run installs
# them), and a Python with simreg, snakemake and the plugin (`pip install -e ".[slurm]"`) on
# PATH or in $PYTHON.
#
#   tests/slurm/run_slurm_test.sh [FOLDER]     # default: a new folder under /tmp
#
# Exit 0: passed. The folder (logs of every daemon, both runs) is removed after a pass unless
# given or KEEP=1, and kept after a failure. About 3-4 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
HERE="$ROOT/tests/slurm"
if [[ $# -ge 1 ]]; then D=$(mkdir -p "$1" && cd "$1" && pwd); KEEP=1; else D=$(mktemp -d /tmp/simreg-slurm.XXXXXX); fi
KEEP=${KEEP:-0}
TARGET=results/figures/noise_accuracy.pdf
CONFIGS=("$ROOT/config.yaml" "$ROOT/configs/quick.yaml" "$HERE/config.yaml")
ACCOUNT=simreg
PARTITION=debug

say() { echo "slurm-test: $*" >&2; }
die() { say "FAILED: $*"; say "logs kept in $D"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (the daemons run as root here)"
for tool in munged mariadb-install-db mariadbd slurmdbd slurmctld slurmd sbatch sacct sacctmgr scancel; do
  command -v "$tool" > /dev/null || die "$tool not found: apt-get install -y slurm-wlm slurmdbd munge mariadb-server"
done
"$PYTHON" -c "import simreg, snakemake_executor_plugin_slurm" 2> /dev/null \
  || die "$PYTHON lacks simreg or snakemake-executor-plugin-slurm: pip install -e \".[slurm]\""
say "folder $D"

mkdir -p "$D"/{munge,db,state,spool,log,dev,local,slurm}
ETC_CONF=/etc/slurm/slurm.conf
PIDS=("$D/slurmd.pid" "$D/slurmctld.pid" "$D/slurmdbd.pid" "$D/db/mariadb.pid" "$D/munge/munged.pid")
cleanup() {
  local rc=$?
  set +e
  [[ -n ${KILLER:-} ]] && kill "$KILLER" 2> /dev/null
  # our jobs first, then each daemon this script started (by its pid file), newest first
  [[ -f "$D/slurm.conf" && -f "$D/slurmctld.pid" ]] && SLURM_CONF="$D/slurm.conf" scancel --user=root 2> /dev/null
  for pidfile in "${PIDS[@]}"; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2> /dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null
  done
  [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$D/slurm.conf" ]] && rm -f "$ETC_CONF"
  if [[ $rc -eq 0 && $KEEP != 1 ]]; then rm -rf "$D"; else say "logs kept in $D"; fi
  exit $rc
}
trap cleanup EXIT

free_ports() {  # N free TCP ports on 127.0.0.1
  "$PYTHON" - "$1" << 'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 4))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up in ${seconds}s"
}
read -r CTLD_PORT SLURMD_PORT DBD_PORT DB_PORT <<< "$(free_ports 4)"
NODE=$(hostname -s)
export SLURM_CONF="$D/slurm.conf"

# ---- munge --------------------------------------------------------------------------------
head -c 1024 /dev/urandom > "$D/munge/munge.key"
chmod 600 "$D/munge/munge.key"
MUNGE_SOCKET="$D/munge/munge.socket"
munged --force --socket="$MUNGE_SOCKET" --key-file="$D/munge/munge.key" \
  --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/seed"
wait_for 10 munged test -S "$MUNGE_SOCKET"

# ---- MariaDB and slurmdbd (accounting: sacct, sacctmgr) ------------------------------------
mariadb-install-db --no-defaults --user=root --datadir="$D/db/data" \
  --auth-root-authentication-method=normal > "$D/log/mariadb-install.log" 2>&1 \
  || die "mariadb-install-db (see $D/log/mariadb-install.log)"
setsid mariadbd --no-defaults --user=root --datadir="$D/db/data" --socket="$D/db/mariadb.sock" \
  --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$D/db/mariadb.pid" \
  --log-error="$D/log/mariadb.log" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
  > /dev/null 2>&1 < /dev/null &
wait_for 60 MariaDB mariadb-admin --no-defaults -S "$D/db/mariadb.sock" -uroot ping
mariadb --no-defaults -S "$D/db/mariadb.sock" -uroot -e "
  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'simreg-test';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

cat > "$D/slurmdbd.conf" << EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=simreg-test
StorageLoc=slurm_acct_db
EOF
chmod 600 "$D/slurmdbd.conf"

# ---- slurm.conf: one node, 2 CPUs, one pretend GPU ----------------------------------------
CPUS=$(nproc)
mknod "$D/dev/nvidia0" c 1 3  # a character device (same as /dev/null) to back gres/gpu
cat > "$D/slurm.conf" << EOF
ClusterName=simregtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=16000 Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=$NODE Name=gpu File=$D/dev/nvidia0" > "$D/gres.conf"
# The daemons and this script read $SLURM_CONF, but inside a job the jobstep plugin
# (snakemake-executor-plugin-slurm-jobstep 0.6.1) drops every SLURM_* variable but the job's
# ids before it calls `srun`, so srun only finds the default /etc/slurm/slurm.conf.
[[ -L $ETC_CONF && ! -e $ETC_CONF ]] && rm -f "$ETC_CONF"  # left by a killed earlier run
if [[ -e $ETC_CONF || -L $ETC_CONF ]]; then
  die "$ETC_CONF exists: this test writes its own there (a link to $D/slurm.conf); run it on a machine without a SLURM configuration"
fi
mkdir -p "$(dirname "$ETC_CONF")"
ln -s "$D/slurm.conf" "$ETC_CONF"

slurmdbd || die "slurmdbd did not start (see $D/log/slurmdbd.log)"
wait_for 60 slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster simregtest > /dev/null
sacctmgr -i add account "$ACCOUNT" Description=simreg-test Organization=simreg > /dev/null
sacctmgr -i add user root Account="$ACCOUNT" > /dev/null
slurmctld || die "slurmctld did not start (see $D/log/slurmctld.log)"
wait_for 30 slurmctld scontrol ping
slurmd || die "slurmd did not start (see $D/log/slurmd.log)"
node_idle() { [[ $(sinfo -h -n "$NODE" -o %T) == idle ]]; }
wait_for 60 "slurmd (node $NODE idle)" node_idle
say "cluster up: $(sinfo -h -o '%P %D %T %c CPUs %m MB %G')"

# ---- the reference: the same DAG, run locally ---------------------------------------------
say "local run"
(cd "$D/local" && "$PYTHON" -m snakemake "$TARGET" --cores 2 -s "$ROOT/Snakefile" -d "$D/local" \
  --configfile "${CONFIGS[@]}") > "$D/local.log" 2>&1 || die "local run (see $D/local.log)"

# ---- the SLURM run: profiles/slurm as tracked, account and partition from the environment --
export SBATCH_ACCOUNT="$ACCOUNT" SBATCH_PARTITION="$PARTITION" SIMREG_GPU_PARTITION="$PARTITION"
# the login node's step first: every download job (localrule), so that compute jobs only read
say "download step (login node)"
(cd "$D/slurm" && "$PYTHON" -m snakemake "$TARGET" --cores 1 -s "$ROOT/Snakefile" -d "$D/slurm" \
  --until download download_corruptions --configfile "${CONFIGS[@]}") > "$D/download.log" 2>&1 \
  || die "download step (see $D/download.log)"
say "SLURM run (the threshold training is cancelled once mid-way)"
"$PYTHON" "$HERE/check_slurm_run.py" kill "$D/slurm" > "$D/kill.log" 2>&1 &
KILLER=$!
(cd "$D/slurm" && timeout -k 30 900 "$PYTHON" -m snakemake "$TARGET" --profile "$ROOT/profiles/slurm" -s "$ROOT/Snakefile" \
  -d "$D/slurm" --slurm-init-seconds-before-status-checks 2 --slurm-keep-successful-logs \
  --verbose --configfile "${CONFIGS[@]}") > "$D/slurm.log" 2>&1 \
  || { cat "$D/kill.log" >&2; die "SLURM run (see $D/slurm.log)"; }
wait "$KILLER" || { cat "$D/kill.log" >&2; die "scancel of the training job"; }
cat "$D/kill.log" >&2

# ---- checks ------------------------------------------------------------------------------
"$PYTHON" "$HERE/check_slurm_run.py" check "$D/local" "$D/slurm" "$D/slurm.log" \
  || die "checks"
say "passed"
