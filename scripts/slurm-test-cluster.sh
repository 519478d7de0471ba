#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, with accounting, for the launcher's tests (run as root).
#
#   scripts/slurm-test-cluster.sh          install (Debian packages) if needed, configure, start
#   scripts/slurm-test-cluster.sh stop     stop the daemons
#
# Two partitions share the node: "gpu" (default, PriorityTier 1) and "gpu-high" (PriorityTier 10), whose
# jobs preempt and requeue those of "gpu" (the preempted job gets SIGUSR2 first: submitit checkpoints).
# The node advertises fake GPUs (gres gpu:l40s:1 on /dev/null) and the features of the seeds' cluster,
# so --gres and --constraint behave as on a real site. Fast scheduling and requeue for tests.
set -euo pipefail

if [ "${1:-start}" = stop ]; then
    pkill -x slurmd || true; pkill -x slurmctld || true; pkill -x slurmdbd || true
    pkill -x mariadbd || true; pkill -x munged || true
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi

HOST=$(hostname -s)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
CPUS=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
CONF=/etc/slurm
mkdir -p $CONF /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld
chown munge:munge /run/munge; chown mysql:mysql /run/mysqld
chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true

# munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged

# mariadb for accounting
if ! pgrep -x mariadbd >/dev/null; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    (mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/slurm/mariadb.log 2>&1 &)
    for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat > $CONF/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
chown slurm:slurm $CONF/slurmdbd.conf; chmod 600 $CONF/slurmdbd.conf

cat > $CONF/slurm.conf <<CONF
ClusterName=harness-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldParameters=preempt_send_user_signal
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=2
KillWait=5
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$((MEM - 1024)) Gres=gpu:l40s:1 Features=gpul40s,gpu2h100,gpu4v100,gpuh200 State=UNKNOWN
PartitionName=gpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 OverSubscribe=NO GraceTime=30
PartitionName=gpu-high Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10 OverSubscribe=NO
CONF
cat > $CONF/gres.conf <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu Type=l40s File=/dev/null
CONF
rm -f $CONF/cgroup.conf  # no cgroups: proctrack/linuxproc and task/none need none

pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i add cluster harness-test >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)' && break; sleep 0.5; done
scontrol update nodename=$HOST state=resume >/dev/null 2>&1 || true
sinfo
sacct -n -X -S now >/dev/null && echo "slurm test cluster ready (accounting on)"
