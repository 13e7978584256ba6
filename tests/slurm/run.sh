#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests/slurm.rs: installs Debian's Slurm and
# MUNGE when missing, writes a slurm.conf into a temp folder (this host, its cores and memory),
# starts munged, slurmctld and slurmd directly (no systemd), runs the sweep test against them
# and stops the daemons it started, by pid. Needs root (Slurm's and MUNGE's users). `--install`
# only installs.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
for package in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "${1:-}" = --install ] && exit 0

work=$(mktemp -d /tmp/adaexp-slurm.XXXXXX)
chmod 755 "$work"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap stop EXIT

# MUNGE: its own key, socket and files, owned by its user.
mkdir -p "$work/munge"
mungekey -c -k "$work/munge/munge.key"
chown -R munge:munge "$work/munge"
chmod 700 "$work/munge"
chmod 755 "$work/munge" # slurm (root) reaches the socket in it
runuser -u munge -- munged --key-file="$work/munge/munge.key" \
  --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed"
for _ in $(seq 50); do [ -s "$work/munge/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/munge/munged.pid")")

host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
mkdir -p "$work"/{state,spool,log}
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=adaexp-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
AuthInfo=socket=$work/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=60
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$work/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$work/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 100); do
  sinfo -h -o %t 2>/dev/null | grep -qx idle && break
  sleep 0.2
done
sinfo

# SLURM_TEST_BINARY: the test's executable, built before (.ci/run runs this beside a cargo build
# that holds the target dir's lock, so no cargo here then).
if [ -n "${SLURM_TEST_BINARY:-}" ]; then
  test_command=("$SLURM_TEST_BINARY")
else
  test_command=(cargo test --test slurm --)
fi
if ! "${test_command[@]}" --ignored --nocapture; then
  echo "== slurmctld log (last lines)"; tail -n 30 "$work/log/slurmctld.log" || true
  echo "== slurmd log (last lines)"; tail -n 30 "$work/log/slurmd.log" || true
  exit 1
fi
