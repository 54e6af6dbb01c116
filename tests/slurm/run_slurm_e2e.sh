#!/usr/bin/env bash
# End-to-end proof of the Slurm profile on a REAL single-node Slurm cluster on localhost.
#
#   sudo bash tests/slurm/run_slurm_e2e.sh [options] [TARGET ...]
#
# 1. installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server (apt, only if missing),
# 2. starts munged, MariaDB, slurmdbd (accounting: the executor plugin asks `sacct` for job
#    states), slurmctld and slurmd for one node with this machine's CPUs and memory,
# 3. runs TARGET (default: results/figures/all of the offline demo) in one scratch copy of the
#    workflow with `snakemake --workflow-profile workflow/profiles/slurm` (every job is an sbatch
#    job), and in a second scratch copy locally with `--cores N`,
# 4. checks that both results/ trees are equal (tests/slurm/compare_runs.py: tables byte for
#    byte, the manifest's file lists, figures by hash),
# 5. stops every daemon it started (also on failure or Ctrl-C).
#
# The cluster's configuration goes where Slurm's clients look by default,
# /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf (the snakemake jobstep drops SLURM_CONF
# before its inner srun), marked as written by this script and removed when it stops; the
# script refuses to run where a Slurm configuration it did not write exists. Everything else
# (databases, spool, logs, the two scratch workflows) lives under $SLURM_E2E_STATE.
#
# Options:
#   --disable SECTION    run with config SECTION.enabled = false (repeatable), e.g. to leave out
#                        a stage that does not build yet: --disable lista --disable rpca
#   --configfile FILE    config file of both runs (repeatable; default config/demo.yaml)
#   --config KEY=VALUE   passed to both runs' --config (repeatable; Snakemake reads nested
#                        values as strings, so use --disable/--configfile for booleans)
#   --cores N            cores of the local run (default: all CPUs)
#   --gpus N             stand-in GPUs the node advertises (default 2; GRES gpu on /dev/null,
#                        /dev/zero, ...): the GPU rules' requests (sbatch --gpus=1; the
#                        profile's gpu_rules)
#                        are scheduled for real while the jobs compute on the CPU; 0: no GRES
#                        and the profile's GPU switch off (DEEPUNFOLD_SLURM_GPUS=0)
#   --keep-cluster       leave the cluster running at the end (stop it with --stop)
#   --stop               stop a cluster left running by --keep-cluster and exit
#   --no-local           skip the local run and the comparison
#   --compare-with DIR   skip the local run; compare with the finished local run in workdir DIR
#                        (same code and config; tests/test_slurm.py passes the suite's demo
#                        run). With --disable, the Slurm run's files are compared with the same
#                        files of DIR (compare_runs.py --subset)
#
# Environment: PYTHON (interpreter with snakemake and snakemake-executor-plugin-slurm;
# default: the active virtualenv, else ./.venv, else python3), SLURM_E2E_STATE (state and
# scratch directory, default /tmp/deepunfold-slurm-e2e), SLURM_E2E_TIMEOUT (seconds per
# workflow run, default 1800), SLURM_E2E_PORT_BASE (ports BASE..BASE+3 for slurmctld, slurmd,
# slurmdbd and MariaDB; default 16817).
# Prints "TIMING <phase> <seconds>" lines and writes them to $SLURM_E2E_STATE/timings.tsv.
# Exit status: 0 outputs match; 1 a run failed or the outputs differ; 2 cannot run here
# (not root, no apt-get, missing Python packages).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SLURM_E2E_STATE:-/tmp/deepunfold-slurm-e2e}
RUN_TIMEOUT=${SLURM_E2E_TIMEOUT:-1800}
PORT_BASE=${SLURM_E2E_PORT_BASE:-16817}
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
DB_PORT=$((PORT_BASE + 3))
CLUSTER=deepunfold
ACCOUNT=deepunfold
PARTITION=debug
MARKER=.deepunfold-slurm-e2e
ETC=/etc/slurm
CONF_MARK="# written by deepunfold tests/slurm/run_slurm_e2e.sh"
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

CONFIG_ARGS=()
CONFIGFILES=()
DISABLED=()
LOCAL_CORES=$(nproc)
KEEP=0
FAKE_GPUS=2
STOP_ONLY=0
LOCAL=1
COMPARE_WITH=
TARGETS=()
while (($#)); do
    case $1 in
    --config) CONFIG_ARGS+=("$2"); shift 2 ;;
    --configfile) CONFIGFILES+=("$2"); shift 2 ;;
    --disable) DISABLED+=("$2"); shift 2 ;;
    --cores) LOCAL_CORES=$2; shift 2 ;;
    --keep-cluster) KEEP=1; shift ;;
    --gpus) FAKE_GPUS=$2; shift 2 ;;
    --stop) STOP_ONLY=1; shift ;;
    --no-local) LOCAL=0; shift ;;
    --compare-with) COMPARE_WITH=$(cd "$2" && pwd); LOCAL=0; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
((${#TARGETS[@]})) || TARGETS=(results/figures/all)
((${#CONFIGFILES[@]})) || CONFIGFILES=(config/demo.yaml)

log() { printf '[slurm-e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit "${2:-1}"; }
now() { date +%s.%N; }
TIMINGS=()
timing() { # timing PHASE START
    local s
    s=$(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    TIMINGS+=("$1	$s")
    echo "TIMING $1 $s"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2 t0=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - t0 < limit)) || return 1
        sleep 1
    done
    log "$what after $((SECONDS - t0)) s"
}

# --- daemons: started by us, tracked by pid files under $STATE/run -------------------------
PIDDIR=$STATE/run
stop_pidfile() { # stop_pidfile NAME: SIGTERM, wait up to 20 s, then SIGKILL
    local f=$PIDDIR/$1.pid pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        log "stopped $1 (pid $pid)"
    fi
    rm -f "$f"
}

ours() { [[ -f $1 ]] && head -n 1 "$1" | grep -qxF "$CONF_MARK"; }

stop_cluster() {
    if ours "$ETC/slurm.conf" && [[ -f $PIDDIR/slurmctld.pid ]]; then
        timeout 10 scancel -u root >/dev/null 2>&1 || true
    fi
    local d f
    for d in slurmd slurmctld slurmdbd mariadb munged; do stop_pidfile "$d"; done
    for f in slurm.conf slurmdbd.conf gres.conf; do
        if ours "$ETC/$f"; then rm -f "$ETC/$f"; fi
    done
}

dump_logs() {
    local f
    for f in "$STATE"/log/{slurmctld,slurmd,slurmdbd,mariadb}.log; do
        [[ -s $f ]] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 15 "$f" >&2
    done
    # Slurm logs of failed workflow jobs (successful ones are kept too, see below).
    for f in $(grep -rl "Error in rule" "$STATE/work/slurm/.snakemake/slurm_logs" 2>/dev/null |
        head -n 3); do
        echo "----- last lines of failed job log $f -----" >&2
        tail -n 25 "$f" >&2
    done
}

RUN_PID=
on_exit() {
    local rc=$?
    if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
        log "stopping the workflow run (pid $RUN_PID)"
        # SIGINT: Snakemake cancels its jobs and exits (timeout passes the signal on).
        kill -INT "$RUN_PID" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.5; done
        pkill -KILL -P "$RUN_PID" 2>/dev/null || true # snakemake, child of timeout
        kill -KILL "$RUN_PID" 2>/dev/null || true
    fi
    ((rc == 0)) || dump_logs
    if ((KEEP)) && ((rc == 0)); then
        log "cluster left running (sinfo, squeue, sacct work as root); stop it with $0 --stop"
    else
        stop_cluster
    fi
    if ((${#TIMINGS[@]})); then printf '%s\n' "${TIMINGS[@]}" >"$STATE/timings.tsv" || true; fi
    exit "$rc"
}

if ((STOP_ONLY)); then
    stop_cluster
    exit 0
fi

# --- preconditions --------------------------------------------------------------------------
((EUID == 0)) || die "must run as root (installs packages and starts system daemons)" 2
if [[ -z ${PYTHON:-} ]]; then
    if [[ -n ${VIRTUAL_ENV:-} ]]; then PYTHON=$VIRTUAL_ENV/bin/python
    elif [[ -x $REPO/.venv/bin/python ]]; then PYTHON=$REPO/.venv/bin/python
    else PYTHON=$(command -v python3); fi
fi
"$PYTHON" -c "import snakemake, snakemake_executor_plugin_slurm" 2>/dev/null ||
    die "$PYTHON lacks snakemake or snakemake-executor-plugin-slurm: pip install -e '.[slurm]'" 2
PYBIN=$(dirname "$PYTHON")

# Refuse to wipe a directory that is not ours.
if [[ -e $STATE ]] && [[ ! -f $STATE/$MARKER ]] && [[ -n $(ls -A "$STATE") ]]; then
    die "$STATE exists and was not made by this script; set SLURM_E2E_STATE elsewhere" 2
fi
for f in slurm.conf slurmdbd.conf gres.conf; do
    if [[ -e $ETC/$f ]] && ! ours "$ETC/$f"; then
        die "$ETC/$f exists and was not written by this script: not replacing a real Slurm set-up" 2
    fi
done
mkdir -p "$STATE" && touch "$STATE/$MARKER"
stop_cluster # leftovers of an earlier run killed before its clean-up
trap on_exit EXIT
trap 'exit 130' INT TERM

T_ALL=$(now)

# --- 1. packages ----------------------------------------------------------------------------
T=$(now)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand" 2
    log "installing ${missing[*]} (apt-get)"
    timeout 600 apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$STATE/apt.log" 2>&1 || { tail -n 30 "$STATE/apt.log" >&2; die "apt-get install failed"; }
else
    log "packages already installed: ${PACKAGES[*]}"
fi
timing install "$T"

# --- 2. cluster -----------------------------------------------------------------------------
T=$(now)
rm -rf "$STATE"/{var,log,mysql}
mkdir -p "$STATE"/{var/slurmctld,var/slurmd,log,mysql} "$PIDDIR" "$ETC"
NODE=$(hostname -s)
# Hardware as slurmd sees it (CPUs, RealMemory in MB).
HW=$(slurmd -C | head -n 1)
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
[[ -n $CPUS && -n $MEM ]] || die "could not read CPUs/RealMemory from 'slurmd -C': $HW"
log "node $NODE: $CPUS CPUs, $MEM MB"

unset SLURM_CONF
GRES_NODE=
GRES_TYPES=
if ((FAKE_GPUS > 0)); then
    GRES_NODE=" Gres=gpu:$FAKE_GPUS"
    GRES_TYPES="GresTypes=gpu
AccountingStorageTRES=gres/gpu"
fi
cat >"$ETC/slurm.conf" <<EOF
$CONF_MARK
# Single-node test cluster on localhost; state under $STATE.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/var/slurmctld
SlurmdSpoolDir=$STATE/var/slurmd
SlurmctldPidFile=$PIDDIR/slurmctld.pid
SlurmdPidFile=$PIDDIR/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=300
$GRES_TYPES
KillWait=10
InactiveLimit=0
SlurmdTimeout=120
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN$GRES_NODE
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
if ((FAKE_GPUS > 0)); then
    # Stand-in GPUs: Slurm's gres/gpu needs one device file per GPU and only stat()s it here
    # (no cgroup device confinement), so character devices every system has serve. Slurm
    # schedules --gpus requests for real; the jobs compute on the CPU.
    DEVICES=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    ((FAKE_GPUS <= ${#DEVICES[@]})) || die "--gpus at most ${#DEVICES[@]}" 2
    {
        echo "$CONF_MARK"
        echo "AutoDetect=off"
        for dev in "${DEVICES[@]:0:FAKE_GPUS}"; do echo "NodeName=$NODE Name=gpu File=$dev"; done
    } >"$ETC/gres.conf"
fi

DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$ETC/slurmdbd.conf" <<EOF
$CONF_MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$PIDDIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"

# munge: reuse a working daemon, else start one as the munge user.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running: reusing it"
else
    [[ -f /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key &&
        chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key; }
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 20 "munged up" bash -c 'munge -n | unmunge' || die "munged did not start"
    cp /run/munge/munged.pid "$PIDDIR/munged.pid"
fi

# MariaDB: a private instance (own data directory, socket and port).
mariadb-install-db --user=root --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
    >"$STATE/log/mariadb-install.txt" 2>&1 || die "mariadb-install-db failed (see $STATE/log)"
MYSOCK=$PIDDIR/mysqld.sock
nohup mariadbd --user=root --datadir="$STATE/mysql" --socket="$MYSOCK" --port="$DB_PORT" \
    --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$PIDDIR/mariadb.pid" \
    --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
echo $! >"$PIDDIR/mariadb.pid"
wait_for 60 "MariaDB up" mariadb-admin --socket="$MYSOCK" ping || die "MariaDB did not start"
mariadb --socket="$MYSOCK" -u root <<EOF
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF

slurmdbd -D >"$STATE/log/slurmdbd.out" 2>&1 &
echo $! >"$PIDDIR/slurmdbd.pid"
wait_for 60 "slurmdbd up" sacctmgr -n list cluster || die "slurmdbd did not answer sacctmgr"
sacctmgr -i add cluster "$CLUSTER" >/dev/null

slurmctld -D >"$STATE/log/slurmctld.out" 2>&1 &
echo $! >"$PIDDIR/slurmctld.pid"
wait_for 60 "slurmctld up" scontrol ping || die "slurmctld did not start"
slurmd -D -N "$NODE" >"$STATE/log/slurmd.out" 2>&1 &
echo $! >"$PIDDIR/slurmd.pid"

sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="deepunfold e2e" \
    organization=deepunfold >/dev/null
sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
node_idle() { [[ $(sinfo -h -n "$NODE" -o %t) == idle ]]; }
wait_for 90 "node $NODE idle" node_idle || { sinfo >&2; die "node $NODE never became idle"; }
# A trivial job through sbatch + sacct, as the executor will use them.
JOB=$(sbatch --parsable -A "$ACCOUNT" -p "$PARTITION" -n 1 -c 1 --mem 100 -t 1 \
    -o "$STATE/log/probe-%j.out" --wrap "hostname")
job_done() { [[ $(sacct -X -n -P -j "$JOB" -o State) == COMPLETED ]]; }
wait_for 60 "probe job $JOB COMPLETED in sacct" job_done ||
    { sacct -j "$JOB" >&2; die "probe job $JOB did not complete (or sacct does not see it)"; }
timing cluster_start "$T"

# --- 3. the workflow, on Slurm and locally --------------------------------------------------
WORK=$STATE/work
rm -rf "$WORK" && mkdir -p "$WORK/slurm"
for f in Snakefile workflow config src; do
    cp -a "$REPO/$f" "$WORK/slurm/"
done
find "$WORK/slurm" -name __pycache__ -prune -exec rm -rf {} +
((LOCAL)) && cp -a "$WORK/slurm" "$WORK/local" # identical code for both runs

export MPLBACKEND=Agg PYTHONUNBUFFERED=1 PATH=$PYBIN:$PATH
if ((${#DISABLED[@]})); then
    printf '%s:\n  enabled: false\n' "${DISABLED[@]}" >"$STATE/disabled.yaml"
    CONFIGFILES+=("$STATE/disabled.yaml")
    log "stages disabled for this run: ${DISABLED[*]}"
fi
COMMON=("${TARGETS[@]}" --configfile "${CONFIGFILES[@]}")
((${#CONFIG_ARGS[@]})) && COMMON+=(--config "${CONFIG_ARGS[@]}")

run_workflow() { # run_workflow NAME ARGS...: in $WORK/NAME, its own src/ first on the path
    local name=$1 rc=0
    shift
    log "running ($name): snakemake $*"
    # In the background and waited for, so that a signal reaches the clean-up at once (bash
    # runs traps only after a foreground child ends); on_exit stops it (and so its Slurm jobs).
    (cd "$WORK/$name" && PYTHONPATH=$WORK/$name/src exec timeout "$RUN_TIMEOUT" \
        "$PYTHON" -m snakemake "$@" >"$STATE/log/snakemake-$name.txt" 2>&1) &
    RUN_PID=$!
    wait "$RUN_PID" || rc=$?
    RUN_PID=
    if ((rc)); then
        tail -n 60 "$STATE/log/snakemake-$name.txt" >&2
        ((rc == 124)) && die "$name run timed out after $RUN_TIMEOUT s"
        die "$name run failed (exit $rc); full log: $STATE/log/snakemake-$name.txt"
    fi
}

# The slurm profile with an account and partition that exist here, one GPU per GPU-rule job
# if the node advertises (count-only) GPUs, and a short first status check (the demo's jobs
# take seconds; the plugin's default waits 40 s).
T=$(now)
GPUS_PER_JOB=$((FAKE_GPUS > 0 ? 1 : 0))
DEEPUNFOLD_SLURM_ACCOUNT=$ACCOUNT DEEPUNFOLD_SLURM_PARTITION=$PARTITION \
    DEEPUNFOLD_SLURM_GPUS=$GPUS_PER_JOB run_workflow slurm --workflow-profile workflow/profiles/slurm \
    --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs "${COMMON[@]}"
timing slurm_run "$T"
# Every workflow job (named after the run's UUID; the probe is "wrap") must be in accounting,
# and exactly the jobs of the profile's gpu_rules (comment rule_<name>) hold a GPU.
GPU_RULES=$("$PYTHON" -c 'import re, sys
text = open(sys.argv[1]).read()
print(" ".join(re.findall(r"\w+", re.search(r"gpu_rules = \[(.*)\]", text).group(1))))' \
    "$REPO/workflow/profiles/slurm/profile.yaml")
JOBS=$(sacct -X -n -P -S now-1days -o JobID,JobName,State,Comment%300,AllocTRES%300 |
    grep -v '|wrap|' || true)
n_sbatch=$(grep -c . <<<"$JOBS" || true)
log "Slurm accounting: $n_sbatch workflow jobs, states: $(cut -d'|' -f3 <<<"$JOBS" | sort |
    uniq -c | tr -s ' \n' ' ')"
((n_sbatch > 0)) || die "no workflow job went through Slurm"
GPU_CHECK='BEGIN { n = split(rules, r, " "); for (i = 1; i <= n; i++) is_gpu[r[i]] = 1 }
    { rule = $4; sub(/^rule_/, "", rule); sub(/_wildcards_.*/, "", rule)
    want_gpu = (rule in is_gpu); gpu = ($5 ~ /gres\/gpu=/); n_rule += want_gpu; n_gpu += gpu
    if (gpu != (want_gpu && want > 0)) print "  job " $1 " rule " rule " TRES " $5 > "/dev/stderr" }
    END { print n_rule + 0, n_gpu + 0 }'
read -r n_rule n_gpu < <(awk -F'|' -v want="$GPUS_PER_JOB" -v rules="$GPU_RULES" "$GPU_CHECK" \
    <<<"$JOBS" 2>"$STATE/gpu_check.txt")
bad=$(cat "$STATE/gpu_check.txt")
log "jobs of GPU rules ($GPU_RULES): $n_rule; jobs that held a GPU: $n_gpu"
[[ -z $bad ]] || die "GPU requests do not match the GPU rules (GPUs per job $GPUS_PER_JOB):
$bad"
echo "SLURM_JOBS $n_sbatch"
echo "SLURM_GPU_RULE_JOBS $n_rule"
echo "SLURM_GPU_JOBS $n_gpu"

REFERENCE=$COMPARE_WITH
if ((LOCAL)); then
    T=$(now)
    run_workflow local --workflow-profile none --cores "$LOCAL_CORES" "${COMMON[@]}"
    timing local_run "$T"
    REFERENCE=$WORK/local
fi
SUBSET=()
[[ -n $COMPARE_WITH ]] && ((${#DISABLED[@]})) && SUBSET=(--subset)
if [[ -n $REFERENCE ]]; then
    if "$PYTHON" "$REPO/tests/slurm/compare_runs.py" "$REFERENCE" "$WORK/slurm" \
        --names local slurm "${SUBSET[@]}" | tee "$STATE/compare.txt"; then
        log "outputs of the Slurm run and the local run ($REFERENCE) match"
    else
        die "outputs differ (see above and $STATE/compare.txt)"
    fi
fi
timing total "$T_ALL"
