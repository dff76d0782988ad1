#!/bin/bash
# oar-up.sh - bring up a real one-node OAR 2.5 cluster (Debian packages) on
# localhost, for the test suite and CI.  Tear it down with oar-down.sh.
#
# Follows /work/shared/notes/oar-localhost.md ("the notes"):
#   install -> PostgreSQL -> fresh OAR database -> oar.conf edits -> resources
#   -> local launch wrapper (or OAR's sshd) -> oar-server -> smoke job.
# Every process it starts is recorded under /run/oar-ci/ so that oar-down.sh
# can stop exactly those (never by name).
#
# Environment (all optional):
#   OAR_CI_CORES=4          cores (resources) on host "localhost"
#   OAR_CI_LAUNCH=auto      auto | local | ssh: how the server reaches the node
#   OAR_CI_SMOKE_TIMEOUT=60 seconds to wait for the smoke job
# Jobs must be submitted by the unprivileged user "mlxoar" (see README-oar.md).
set -Eeuo pipefail

readonly STATE_DIR=/run/oar-ci
readonly SETUP_LOG=$STATE_DIR/up.log
readonly OAR_CONF=/etc/oar/oar.conf
readonly OAR_LOG=/var/log/oar.log
readonly OAR_SERVER_PIDFILE=/var/run/oar-server.pid   # written by /usr/sbin/oar-server
readonly OAR_PORT_HEX=1A0A                             # SERVER_PORT 6666
readonly JOB_USER=mlxoar
readonly WORK_DIR=/srv/mlxoar
readonly WRAPPER_DST=/usr/local/lib/oar-ci/oar-launch-wrapper.sh
readonly CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly PACKAGES=(oar-server oar-server-pgsql oar-node oar-user oar-user-pgsql postgresql)
readonly DB_PASSWD_RW=oar-ci-rw   # local-only cluster; any non-empty value works
readonly DB_PASSWD_RO=oar-ci-ro

CORES=${OAR_CI_CORES:-4}
LAUNCH_MODE=${OAR_CI_LAUNCH:-auto}
SMOKE_TIMEOUT=${OAR_CI_SMOKE_TIMEOUT:-60}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T0=$(date +%s.%N)
CREATED_POLICY_RC=0

log() { echo "oar-up: $*"; }
# shellcheck source=scripts/clusters/oar-lib.sh
source "$(dirname "$(readlink -f "$0")")/oar-lib.sh"
die() { echo "oar-up: ERROR: $*" >&2; exit 1; }

# Run a setup command quietly; its output goes to the setup log.
run() {
    echo "+ $*" >>"$SETUP_LOG"
    "$@" >>"$SETUP_LOG" 2>&1
}

# OAR commands get a clean environment: root's here has pyenv variables.

on_exit() {
    local rc=$?
    if ((CREATED_POLICY_RC)); then rm -f /usr/sbin/policy-rc.d; fi
    if ((rc != 0)); then
        echo "oar-up: FAILED (rc $rc) after $(since "$T0") s" >&2
        if [[ -s "$SETUP_LOG" ]]; then
            echo "---- last lines of $SETUP_LOG ----" >&2
            tail -n 25 "$SETUP_LOG" >&2 || true
        fi
        if [[ -s "$OAR_LOG" ]]; then
            echo "---- last lines of $OAR_LOG ----" >&2
            tail -n 40 "$OAR_LOG" >&2 || true
        fi
        echo "oar-up: processes started so far are recorded in $STATE_DIR; run oar-down.sh to stop them" >&2
    fi
}

# ---------------------------------------------------------------- processes


# True if something listens on TCP port 6666 (Almighty's SERVER_PORT).
port_listening() {
    awk -v p=":$OAR_PORT_HEX" 'FNR > 1 && substr($2, length($2) - 4) == p && $4 == "0A" { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

record_server_descendants() {
    local main
    main=$(cat "$STATE_DIR/oar-server.pid")
    { cat "$STATE_DIR/oar-server.descendants" 2>/dev/null || true; descendants "$main"; } |
        sort -un >"$STATE_DIR/oar-server.descendants.new"
    mv "$STATE_DIR/oar-server.descendants.new" "$STATE_DIR/oar-server.descendants"
}

server_up() {
    [[ -s "$STATE_DIR/oar-server.pid" ]] && pid_matches "$(cat "$STATE_DIR/oar-server.pid")" 'Almighty'
}
postgres_up() {
    if [[ -s "$STATE_DIR/postgres.pid" ]]; then
        pid_matches "$(cat "$STATE_DIR/postgres.pid")" 'postgres'
    else   # an already-running cluster that we did not start: leave it to its owner
        [[ -s "$STATE_DIR/state" ]] && grep -q '^pg_owned=0$' "$STATE_DIR/state"
    fi
}

# ---------------------------------------------------------------- oar.conf
# set_conf KEY VALUE: replace "KEY=..." or "#KEY=..." in oar.conf, else append.
set_conf() {
    local key=$1 value=$2
    if grep -Eq "^#?[[:space:]]*${key}=" "$OAR_CONF"; then
        sed -i -E "s|^#?[[:space:]]*${key}=.*|${key}=\"${value}\"|" "$OAR_CONF"
    else
        printf '%s="%s"\n' "$key" "$value" >>"$OAR_CONF"
    fi
}
get_conf() {   # get_conf KEY DEFAULT
    local v
    v=$(sed -n -E "s/^${1}=\"?([^\"]*)\"?[[:space:]]*$/\1/p" "$OAR_CONF" | tail -n 1)
    echo "${v:-$2}"
}

# ================================================================ main
if ((EUID != 0)); then
    echo "oar-up: must run as root: it installs Debian packages, starts PostgreSQL and" >&2
    echo "oar-up: the OAR server, and creates the job user $JOB_USER. Run it with sudo." >&2
    exit 1
fi
[[ "$CORES" =~ ^[1-9][0-9]*$ ]] || die "OAR_CI_CORES must be a positive integer (got '$CORES')"
case "$LAUNCH_MODE" in auto | local | ssh) ;; *) die "OAR_CI_LAUNCH must be auto, local or ssh" ;; esac
trap on_exit EXIT

mkdir -p "$STATE_DIR"

# 1. Idempotence: our server and database are still up -> nothing to do.
if server_up && postgres_up; then
    log "already up (Almighty pid $(cat "$STATE_DIR/oar-server.pid"); pids in $STATE_DIR); nothing to do"
    exit 0
fi
# Half up (e.g. Almighty died): clean what we recorded, then start afresh.
if compgen -G "$STATE_DIR/*.pid" >/dev/null; then
    log "previous cluster only partly alive; stopping its recorded processes first"
    bash "$SCRIPT_DIR/oar-down.sh"
    mkdir -p "$STATE_DIR"
fi
: >"$SETUP_LOG"

# 2. Packages (notes, recipe 1).  No sshd unless OAR_CI_LAUNCH=ssh needs it.
missing=()
for p in "${PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    t_install=$(date +%s.%N)
    log "installing ${missing[*]} (apt output in $SETUP_LOG)"
    # Services must not start from postinst (no systemd; the oar-node init
    # script would start sshd on :6667): block them unless a policy already does.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        CREATED_POLICY_RC=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_ok=0
    for _ in 1 2 3; do   # the lists lock may be held by another apt run
        if run apt-get -o DPkg::Lock::Timeout=900 -q update </dev/null; then apt_ok=1; break; fi
        sleep 10
    done
    ((apt_ok)) || die "apt-get update failed"
    run apt-get -o DPkg::Lock::Timeout=900 -q install -y --no-install-recommends "${missing[@]}" </dev/null ||
        die "apt-get install failed"
    if ((CREATED_POLICY_RC)); then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY_RC=0; fi
    log "packages installed in $(since "$t_install") s"
fi
[[ -r "$OAR_CONF" ]] || die "$OAR_CONF is missing after the install"

# 3. PostgreSQL (notes, recipe 2).  Keep "main" of the newest installed version.
pg_line=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main"' | sort -V | tail -n 1)
if [[ -z "$pg_line" ]]; then
    pg_ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    [[ -n "$pg_ver" ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
    run pg_createcluster "$pg_ver" main || die "pg_createcluster $pg_ver main failed"
    pg_line=$(pg_lsclusters -h | awk -v v="$pg_ver" '$1 == v && $2 == "main"')
fi
read -r pg_ver _ pg_port pg_status _ pg_data _ <<<"$pg_line"
if [[ "$pg_status" == online* ]]; then
    pg_owned=0
    log "PostgreSQL $pg_ver/main was already running; using it (oar-down.sh will leave it running)"
    rm -f "$STATE_DIR/postgres.pid"
else
    run pg_ctlcluster "$pg_ver" main start || die "pg_ctlcluster $pg_ver main start failed"
    pg_owned=1
    head -n 1 "$pg_data/postmaster.pid" >"$STATE_DIR/postgres.pid"
fi
printf 'pg_version=%s\npg_cluster=main\npg_port=%s\npg_owned=%s\n' \
    "$pg_ver" "$pg_port" "$pg_owned" >"$STATE_DIR/state"

# 4. oar.conf (notes, recipe 3).  Keep the packaged file once for reference.
[[ -e "$OAR_CONF.oar-ci.orig" ]] || cp -p "$OAR_CONF" "$OAR_CONF.oar-ci.orig"
set_conf DB_PORT "$pg_port"
set_conf DB_BASE_PASSWD "$DB_PASSWD_RW"       # shipped empty; pg_hba uses scram on 127.0.0.1
set_conf DB_BASE_PASSWD_RO "$DB_PASSWD_RO"
# No cpuset/cgroup job manager: it would mount cgroups on a shared machine.
sed -i -E 's|^(JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD=)|#\1|' "$OAR_CONF"
# Test speed-ups (defaults 60, 5, 300, 300, 300).
set_conf SCHEDULER_JOB_SECURITY_TIME 1
set_conf SCHEDULER_MIN_TIME_BETWEEN_2_CALLS 1
set_conf JOBDEL_SOFTWALLTIME 10
set_conf JOBDEL_WALLTIME 30
set_conf FINAUD_FREQUENCY 30

# 5. A fresh OAR database every time (notes, recipe 4).
db_name=$(get_conf DB_BASE_NAME oar)
db_user=$(get_conf DB_BASE_LOGIN oar)
db_ro_user=$(get_conf DB_BASE_LOGIN_RO oar_ro)
(cd / && run runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" \
    -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS \"$db_user\"" -c "DROP ROLE IF EXISTS \"$db_ro_user\"") ||
    die "could not drop the old OAR database"
(cd / && run oar-database --create --db-is-local -y) || die "oar-database --create failed"
run oar-database --check || die "oar-database --check failed"

# 6. Resources: CORES cores on host "localhost" (notes, recipe 5); keeps the
#    setup independent of the machine's hostname.
run oar_cmd oarproperty -c -a host
run oar_cmd oarproperty -a cpu
run oar_cmd oarproperty -a core
for ((i = 0; i < CORES; i++)); do
    run oar_cmd oarnodesetting -a -h localhost -p host=localhost -p cpu=0 -p "core=$i" -p "cpuset=$i" ||
        die "oarnodesetting -a failed for core $i"
done
run oar_cmd oarnodesetting -s Alive -h localhost   # notes: recover a Suspected node

# 7. Job user (notes, "root (and oar) cannot submit"): OAR runs jobs with
#    BASH_ENV sourcing the user's ~/.bashrc, so it must stay plain (root's runs
#    pyenv here and fork-bombed jobs).
if ! id "$JOB_USER" >/dev/null 2>&1; then
    run useradd --create-home --user-group --shell /bin/bash "$JOB_USER"
fi
job_home=$(getent passwd "$JOB_USER" | cut -d: -f6)
printf '# %s: plain on purpose. OAR sources ~/.bashrc in every batch job (BASH_ENV).\n' \
    "$JOB_USER" >"$job_home/.bashrc"
chown "$JOB_USER:" "$job_home/.bashrc"
# A directory every test can write and the job user can enter (notes: the
# launching directory must be enterable by the job user).
install -d -o "$JOB_USER" -g "$JOB_USER" -m 1777 "$WORK_DIR"

# 8. Server-to-node launches (notes, recipe 6): the local wrapper, else OAR's sshd.
install -D -m 0755 "$SCRIPT_DIR/oar-launch-wrapper.sh" "$WRAPPER_DST"
launch=""
if [[ "$LAUNCH_MODE" != ssh ]]; then
    out=$(cd / && runuser -u oar -- "$WRAPPER_DST" -p 6667 -e none -x -T localhost 'echo oar-ci-launch-ok' 2>&1) || true
    if [[ "$out" == *oar-ci-launch-ok* ]]; then
        launch=local
        set_conf OPENSSH_CMD "$WRAPPER_DST"
    elif [[ "$LAUNCH_MODE" == local ]]; then
        die "the local launch wrapper does not work: $out"
    else
        log "local launch wrapper failed ($out); falling back to OAR's sshd"
    fi
fi
if [[ -z "$launch" ]]; then
    if [[ ! -x /usr/sbin/sshd ]]; then
        log "installing openssh-server for OAR's sshd"
        run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q install -y \
            --no-install-recommends openssh-server </dev/null || die "apt-get install openssh-server failed"
    fi
    mkdir -p /run/sshd
    # OAR's own sshd: port 6667, AllowUsers oar.
    run /usr/sbin/sshd -f /etc/oar/sshd_config -o PidFile="$STATE_DIR/sshd.pid" || die "sshd failed to start"
    set_conf OPENSSH_CMD "/usr/bin/ssh -p 6667 -e none"
    for _ in $(seq 50); do [[ -s "$STATE_DIR/sshd.pid" ]] && break; sleep 0.1; done
    run runuser -u oar -- ssh -p 6667 -o BatchMode=yes localhost true || die "ssh to OAR's sshd failed"
    launch=ssh
fi
echo "launch=$launch" >>"$STATE_DIR/state"

# 9. The server (notes, recipe 7): /usr/sbin/oar-server daemonises Almighty
#    (runs as user oar) and writes its PID.  Never started via /etc/init.d,
#    whose "stop" kills by name.
if port_listening; then
    die "something already listens on port 6666 (an OAR server not started by oar-up.sh?); stop it first"
fi
rm -f "$OAR_SERVER_PIDFILE"
oar_cmd /usr/sbin/oar-server
for _ in $(seq 100); do [[ -s "$OAR_SERVER_PIDFILE" ]] && break; sleep 0.1; done
[[ -s "$OAR_SERVER_PIDFILE" ]] || die "oar-server wrote no $OAR_SERVER_PIDFILE"
cp "$OAR_SERVER_PIDFILE" "$STATE_DIR/oar-server.pid"
server_pid=$(cat "$STATE_DIR/oar-server.pid")
# oar-server calls setsid: Almighty, its helpers and the (detached) job
# processes all stay in this session, which oar-down.sh uses as a safety net.
{ read -r stat <"/proc/$server_pid/stat"; } 2>/dev/null || die "Almighty (pid $server_pid) died at start"
read -r _ _ _ server_sid _ <<<"${stat##*) }"
echo "$server_sid" >"$STATE_DIR/oar-server.sid"
for _ in $(seq 200); do
    port_listening && break
    pid_matches "$server_pid" 'Almighty|oar' || die "Almighty (pid $server_pid) died at start"
    sleep 0.1
done
port_listening || die "Almighty does not listen on port 6666 after 20 s"
record_server_descendants
log "OAR server up (Almighty pid $server_pid, launch mode: $launch) after $(since "$T0") s"

# 10. Smoke test: a tiny job as the job user, from the work directory.
smoke_dir=$WORK_DIR/oar-ci-smoke
rm -rf "$smoke_dir"
install -d -o "$JOB_USER" -g "$JOB_USER" -m 0755 "$smoke_dir"
cat >"$smoke_dir/smoke.sh" <<'EOF'
#!/bin/bash
#OAR -l core=1,walltime=0:01:00
#OAR -n oar-ci-smoke
echo "oar-ci smoke ok: job $OAR_JOB_ID as $(id -un)"
EOF
chown "$JOB_USER:" "$smoke_dir/smoke.sh"
chmod 0755 "$smoke_dir/smoke.sh"   # notes: a non-executable script exits 126

t_submit=$(date +%s.%N)
# oarsub takes the launching directory from $PWD (not getcwd()): set it.
sub_out=$(cd "$smoke_dir" && runuser -u "$JOB_USER" -- env -i PATH="$CLEAN_PATH" HOME="$job_home" \
    LANG=C.UTF-8 PWD="$smoke_dir" oarsub -S ./smoke.sh 2>&1) || die "oarsub failed: $sub_out"
job_id=$(sed -n -E 's/^OAR_JOB_ID=([0-9]+)$/\1/p' <<<"$sub_out")
[[ -n "$job_id" ]] || die "no OAR_JOB_ID in the oarsub output: $sub_out"

state=""
deadline=$(($(date +%s) + SMOKE_TIMEOUT))
while (($(date +%s) < deadline)); do
    state=$(oar_cmd oarstat -s -j "$job_id" | sed -n -E "s/^${job_id}: *//p")
    [[ "$state" == Terminated || "$state" == Error ]] && break
    sleep 0.5
done
[[ "$state" == Terminated ]] || die "smoke job $job_id is '$state' (wanted Terminated within $SMOKE_TIMEOUT s)"
exit_code=$(oar_cmd oarstat -f -j "$job_id" | sed -n -E 's/^ *exit_code = (-?[0-9]+).*/\1/p')
[[ "$exit_code" == 0 ]] || die "smoke job $job_id exit_code is '$exit_code' (wanted 0)"
grep -q 'oar-ci smoke ok' "$smoke_dir/OAR.oar-ci-smoke.$job_id.stdout" ||
    die "smoke job $job_id output is missing or wrong"
log "smoke job $job_id Terminated with exit code 0 in $(since "$t_submit") s"
record_server_descendants

log "cluster ready in $(since "$T0") s (submit as: cd $WORK_DIR && runuser -u $JOB_USER -- oarsub -S ./job.sh)"
