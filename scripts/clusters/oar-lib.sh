# Helpers shared by oar-up.sh and oar-down.sh (sourced, not run).
# shellcheck shell=bash

oar_cmd() { env -i PATH="$CLEAN_PATH" LANG=C.UTF-8 "$@"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# True if PID is alive (not a zombie) and its command line matches the ERE.
pid_matches() {
    local pid=$1 pattern=$2 stat cmd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    [[ "${stat##*) }" != Z* ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" =~ $pattern ]]
}

# Print every descendant PID of $1 (walks the ppid links in /proc).
descendants() {
    local -A kids=()
    local f line rest pid ppid queue
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        pid=${line%% *}
        rest=${line##*) }
        read -r _ ppid _ <<<"$rest"
        kids[$ppid]+="$pid "
    done
    queue=${kids[$1]:-}
    while [[ -n "${queue// /}" ]]; do
        read -r pid queue <<<"$queue"
        echo "$pid"
        queue+=" ${kids[$pid]:-}"
    done
}
