#!/bin/bash
# oar-down.sh - tear down the one-node OAR cluster started by oar-up.sh.
#
# 1. oardel every job that is not finished, and wait for them to end;
# 2. stop ONLY the processes recorded in /run/oar-ci (Almighty and its
#    descendants, OAR's sshd if used, the PostgreSQL cluster if oar-up.sh
#    started it), checking each PID's command line first: TERM, then KILL.
#    Never /etc/init.d/oar-server stop, never pkill: both kill by name
#    (/work/shared/notes/oar-localhost.md, recipe 7);
# 3. remove the pid files.
#
# Environment (all optional):
#   OAR_CI_PURGE=1          also drop the OAR database (and its two roles)
#   OAR_CI_JOB_TIMEOUT=40   seconds to wait for deleted jobs to end
#   OAR_CI_KILL_TIMEOUT=10  seconds between TERM and KILL
set -euo pipefail

readonly STATE_DIR=/run/oar-ci
readonly OAR_CONF=/etc/oar/oar.conf
readonly OAR_SERVER_PIDFILE=/var/run/oar-server.pid
readonly CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# What a recorded OAR-server process may look like (Almighty and its helpers).
readonly OAR_PATTERN='Almighty|/usr/lib/oar/|oar-launch-wrapper|oarsh_shell|OAREXEC|sentinelle|oardodo'

PURGE=${OAR_CI_PURGE:-0}
JOB_TIMEOUT=${OAR_CI_JOB_TIMEOUT:-40}   # > JOBDEL_WALLTIME (30 s) set by oar-up.sh
KILL_TIMEOUT=${OAR_CI_KILL_TIMEOUT:-10}

T0=$(date +%s.%N)
log() { echo "oar-down: $*"; }
# shellcheck source=scripts/clusters/oar-lib.sh
source "$(dirname "$(readlink -f "$0")")/oar-lib.sh"



# Print the PIDs (not zombies) whose session id is $1.
session_members() {
    local f line fields
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        read -r -a fields <<<"${line##*) }"
        # fields: 0 state, 1 ppid, 2 pgrp, 3 session
        if [[ "${fields[3]}" == "$1" && "${fields[0]}" != Z ]]; then echo "${line%% *}"; fi
    done
}

# stop_pids PATTERN PID...: TERM the PIDs that match, KILL what is left after
# KILL_TIMEOUT.  Prints how many were signalled.
stop_pids() {
    local pattern=$1 pid n=0 alive
    shift
    local targets=()
    for pid in "$@"; do
        if pid_matches "$pid" "$pattern"; then targets+=("$pid"); fi
    done
    ((${#targets[@]})) || return 0
    kill -TERM "${targets[@]}" 2>/dev/null || true
    n=${#targets[@]}
    local deadline=$(($(date +%s) + KILL_TIMEOUT))
    while :; do
        alive=()
        for pid in "${targets[@]}"; do
            if pid_matches "$pid" "$pattern"; then alive+=("$pid"); fi
        done
        ((${#alive[@]})) || break
        if (($(date +%s) >= deadline)); then
            log "still alive after TERM + ${KILL_TIMEOUT} s, sending KILL: ${alive[*]}"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.2
    done
    log "stopped $n process(es) matching /$pattern/"
}

active_jobs() {   # ids of the jobs oarstat lists by default (the unfinished ones)
    oar_cmd oarstat 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }'
}

pg_admin() {   # pg_admin PORT SQL...
    local port=$1 c args=()
    shift
    for c in "$@"; do args+=(-c "$c"); done
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" "${args[@]}")
}

conf_value() {   # conf_value KEY DEFAULT
    local v=""
    [[ -r "$OAR_CONF" ]] && v=$(sed -n -E "s/^${1}=\"?([^\"]*)\"?[[:space:]]*$/\1/p" "$OAR_CONF" | tail -n 1)
    echo "${v:-$2}"
}

# ================================================================ main
if ((EUID != 0)); then
    echo "oar-down: must run as root: it stops processes of the users oar and postgres." >&2
    exit 1
fi

if [[ ! -d "$STATE_DIR" ]] || ! compgen -G "$STATE_DIR/*.pid" >/dev/null; then
    if ((PURGE == 0)); then
        log "nothing to stop (no pid files in $STATE_DIR)"
        exit 0
    fi
fi

pg_ver="" pg_port="" pg_owned=0
if [[ -s "$STATE_DIR/state" ]]; then
    pg_ver=$(sed -n 's/^pg_version=//p' "$STATE_DIR/state")
    pg_port=$(sed -n 's/^pg_port=//p' "$STATE_DIR/state")
    pg_owned=$(sed -n 's/^pg_owned=//p' "$STATE_DIR/state")
fi

server_pid=$(cat "$STATE_DIR/oar-server.pid" 2>/dev/null || true)
server_alive=0
if pid_matches "$server_pid" 'Almighty'; then server_alive=1; fi

# 1. Delete the unfinished jobs while the server can still act on oardel.
if ((server_alive)); then
    mapfile -t jobs < <(active_jobs)
    if ((${#jobs[@]})); then
        log "deleting ${#jobs[@]} unfinished job(s): ${jobs[*]}"
        oar_cmd oardel "${jobs[@]}" >/dev/null 2>&1 || true   # rc 6 = already being killed
        deadline=$(($(date +%s) + JOB_TIMEOUT))
        while (($(date +%s) < deadline)); do
            mapfile -t jobs < <(active_jobs)
            ((${#jobs[@]})) || break
            sleep 0.5
        done
        if ((${#jobs[@]})); then
            log "WARNING: jobs still not finished after ${JOB_TIMEOUT} s: ${jobs[*]}"
        fi
    fi
fi

# 2. The OAR server: the main PID first (Almighty kills its appendice on TERM),
#    then everything recorded or still descending from it.
if [[ -n "$server_pid" ]]; then
    others=()
    if ((server_alive)); then mapfile -t others < <(descendants "$server_pid"); fi
    if [[ -s "$STATE_DIR/oar-server.descendants" ]]; then
        mapfile -t -O "${#others[@]}" others <"$STATE_DIR/oar-server.descendants"
    fi
    stop_pids 'Almighty' "$server_pid"
    ((${#others[@]} == 0)) || stop_pids "$OAR_PATTERN" "${others[@]}"
    # oar-server's own pid file, if it is still the one we started.
    if [[ "$(cat "$OAR_SERVER_PIDFILE" 2>/dev/null || true)" == "$server_pid" ]]; then
        rm -f "$OAR_SERVER_PIDFILE"
    fi
fi

# Safety net: whatever is left in the session oar-server created with setsid
# (e.g. job processes after an oardel timeout) was started by our server.
if [[ -s "$STATE_DIR/oar-server.sid" ]]; then
    sid=$(cat "$STATE_DIR/oar-server.sid")
    if [[ "$sid" =~ ^[0-9]+$ ]] && ((sid > 1)); then
        mapfile -t left < <(session_members "$sid")
        if ((${#left[@]})); then
            log "processes left in the OAR server's session $sid: ${left[*]}"
            stop_pids '.' "${left[@]}"
        fi
    fi
fi

# OAR's sshd, only in the OAR_CI_LAUNCH=ssh mode.
if [[ -s "$STATE_DIR/sshd.pid" ]]; then
    stop_pids 'sshd' "$(cat "$STATE_DIR/sshd.pid")"
fi

# 3. PostgreSQL: optional purge, then stop the cluster if oar-up.sh started it.
if [[ -z "$pg_ver" ]]; then   # no state file: find the cluster like oar-up.sh does
    read -r pg_ver _ pg_port _ < <(pg_lsclusters -h 2>/dev/null | awk '$2 == "main"' | sort -V | tail -n 1) || true
fi
pg_online() { [[ -n "$pg_ver" ]] && pg_lsclusters -h 2>/dev/null | awk -v v="$pg_ver" '$1 == v && $2 == "main" && $4 ~ /^online/ { f = 1 } END { exit !f }'; }

if ((PURGE)) && [[ -n "$pg_ver" ]]; then
    started_for_purge=0
    if ! pg_online; then
        pg_ctlcluster "$pg_ver" main start && started_for_purge=1
    fi
    db_name=$(conf_value DB_BASE_NAME oar)
    db_user=$(conf_value DB_BASE_LOGIN oar)
    db_ro_user=$(conf_value DB_BASE_LOGIN_RO oar_ro)
    if pg_admin "${pg_port:-5432}" "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" \
        "DROP ROLE IF EXISTS \"$db_user\"" "DROP ROLE IF EXISTS \"$db_ro_user\""; then
        log "dropped the OAR database '$db_name' and roles '$db_user', '$db_ro_user'"
    else
        log "WARNING: could not drop the OAR database"
    fi
    if ((started_for_purge)); then pg_ctlcluster "$pg_ver" main stop -m fast || true; fi
fi

if [[ -s "$STATE_DIR/postgres.pid" ]]; then
    pg_pid=$(cat "$STATE_DIR/postgres.pid")
    if pid_matches "$pg_pid" 'postgres'; then
        if ! pg_ctlcluster "$pg_ver" main stop -m fast; then
            log "pg_ctlcluster stop failed; trying -m immediate"
            pg_ctlcluster "$pg_ver" main stop -m immediate || true
        fi
        # pg_ctlcluster waits; KILL the recorded postmaster only if it is still there.
        stop_pids 'postgres' "$pg_pid"
        log "stopped PostgreSQL $pg_ver/main (postmaster pid $pg_pid)"
    fi
elif ((pg_owned == 0)) && [[ -s "$STATE_DIR/state" ]]; then
    log "PostgreSQL was already running before oar-up.sh; leaving it running"
fi

# 4. Pid files (the setup log stays for debugging).
rm -f "$STATE_DIR"/*.pid "$STATE_DIR/oar-server.descendants" "$STATE_DIR/oar-server.sid" "$STATE_DIR/state"
log "down in $(since "$T0") s"
