#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the `slurm` tests and for trying the
# cluster recipe of docs/scaling.md: `scripts/slurm.sh up` (make slurm), `scripts/slurm.sh down`
# (make slurm-down). Debian's packages (slurm-wlm, slurmdbd, munge, mariadb-server), as root.
#
#   munged (as user munge)  ->  mariadbd  ->  slurmdbd (job accounting: sacct answers)
#                           ->  slurmctld + slurmd (this host is controller and only node)
#
# Idempotent: what is installed is not installed again, a daemon that runs is left running, so a
# second `up` takes about a second. `down` stops the daemons it started, by their pid files.
# The configuration fits a small machine: all its CPUs as one node of one partition `debug`,
# proctrack/linuxproc and task/none (no cgroups needed), select/cons_tres by CPU, and
# AuthInfo=cred_expire=5 and a scheduler pass every 1-2 s, so that a requeued job runs again after
# ~12 s, not ~2 minutes (a requeued job waits cred_expire in BeginTime, then for a scheduler pass).
set -euo pipefail

STATE=/var/lib/tpbench-slurm         # slurmctld state, slurmd spool, pid and log files
CLUSTER=tpbench
HOST=$(hostname -s)
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
DB_SOCKET=/run/mysqld/mysqld.sock

say() { echo "slurm: $*"; }

install_packages() {
    local missing=0 binary
    for binary in slurmctld slurmd slurmdbd munged mariadbd; do
        command -v "$binary" >/dev/null || missing=1
    done
    if [ "$missing" = 0 ]; then return; fi
    if [ "$(id -u)" != 0 ]; then
        say "not installed and not root: run as root (apt-get install ${PACKAGES[*]})" >&2
        exit 1
    fi
    say "installing ${PACKAGES[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}" >/dev/null
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$((seconds * 5))"); do
        if "$@" >/dev/null 2>&1; then return; fi
        sleep 0.2
    done
    say "$what did not come up within ${seconds}s; see $STATE/*.log" >&2
    exit 1
}

start_munge() {
    install -d -o munge -g munge -m 0755 /run/munge
    if ! running /run/munge/munged.pid; then
        runuser -u munge -- /usr/sbin/munged --force
    fi
    wait_for 10 munged sh -c 'munge -n | unmunge'
}

start_database() {
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if ! running /run/mysqld/mysqld.pid; then
        # (its own session, no terminal: it outlives this script and holds no pipe of it)
        setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket="$DB_SOCKET" \
            --pid-file=/run/mysqld/mysqld.pid --log-error="$STATE/mariadb.log" \
            </dev/null >/dev/null 2>&1 &
    fi
    wait_for 30 mariadbd mariadb --socket="$DB_SOCKET" -e 'select 1'
    mariadb --socket="$DB_SOCKET" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' \
        IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

write_configs() {
    local cpus memory
    cpus=$(nproc)
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    install -d -m 0755 /etc/slurm "$STATE" "$STATE/ctld" "$STATE/d"
    cat >/etc/slurm/slurm.conf <<EOF
# written by tpbench's scripts/slurm.sh: a single-node test cluster (docs/scaling.md)
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
SchedulerParameters=bf_interval=1,sched_interval=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=300
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >/etc/slurm/slurmdbd.conf <<EOF
# written by tpbench's scripts/slurm.sh
DbdHost=localhost
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
EOF
    chmod 0600 /etc/slurm/slurmdbd.conf
}

start_slurm() {
    running "$STATE/slurmdbd.pid" || slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    running "$STATE/slurmctld.pid" || slurmctld
    wait_for 30 slurmctld scontrol ping
    running "$STATE/slurmd.pid" || slurmd
    wait_for 30 "node $HOST" sh -c "sinfo -h -n $HOST -o %t | grep -Eq 'idle|mix|alloc'"
}

up() {
    install_packages
    install -d -m 0755 "$STATE"
    start_munge
    start_database
    write_configs
    start_slurm
    say "up: $(sinfo -h -o '%P %D node(s) %c CPUs %t') ($HOST); sacct answers; logs in $STATE"
}

stop() {  # stop PIDFILE NAME
    if running "$1"; then
        local pid
        pid=$(cat "$1")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        say "stopped $2"
    fi
}

down() {
    stop "$STATE/slurmd.pid" slurmd
    stop "$STATE/slurmctld.pid" slurmctld
    stop "$STATE/slurmdbd.pid" slurmdbd
    stop /run/mysqld/mysqld.pid mariadbd
    stop /run/munge/munged.pid munged
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
