#!/bin/bash
# oar-launch-wrapper.sh - stands in for OAR's OPENSSH_CMD on a one-node CI cluster.
#
# Every server-to-node call in OAR 2.5 (bipbip's oarexec launch, Leon's kill,
# sarko's checkpoint, oardel -c/-s, the sentinelle pingchecker) runs
#     $OPENSSH_CMD [ssh options] [-x -T] <host> <command words...>
# (see /work/shared/notes/oar-localhost.md, "Simpler mode without sshd").
# On localhost we drop the ssh options and the host and run the command the way
# OAR's own sshd would: through the oar user's login shell, oarsh_shell, with a
# small clean environment (sshd does not pass the caller's environment either).
#
# oar-up.sh copies this file to /usr/local/lib/oar-ci/ (readable by user oar,
# unlike a checkout under /root) and points OPENSSH_CMD at that copy.
set -euo pipefail

# ssh options that take an argument (from OPENSSH_OPTSTR in oar.conf).
readonly OPTS_WITH_ARG="bceilmopBDEFIJLOQRSwW"
# Variables OAR's node sshd accepts (AcceptEnv in /etc/oar/sshd_config).
readonly ACCEPT_ENV="OAR_CPUSET OAR_USER_CPUSET OAR_USER_GPUDEVICE OAR_JOB_USER"

send_env=()   # names asked for with -o SendEnv=...

note_option() {   # $1 = option letter, $2 = its argument
    if [[ "$1" == o && "$2" == SendEnv=* ]]; then
        local names=${2#SendEnv=}
        names=${names//\"/}
        # shellcheck disable=SC2206  # split the name list on blanks on purpose
        send_env+=($names)
    fi
}

# Parse ssh-style options: clustered flags (-xT), attached (-p6667) or
# separate (-p 6667) arguments, and "--".
while (($# > 0)); do
    case "$1" in
        --) shift; break ;;
        -?*)
            word=${1#-}
            shift
            while [[ -n "$word" ]]; do
                letter=${word:0:1}
                word=${word:1}
                if [[ "$OPTS_WITH_ARG" == *"$letter"* ]]; then
                    if [[ -n "$word" ]]; then
                        arg=$word
                    elif (($# > 0)); then
                        arg=$1
                        shift
                    else
                        echo "oar-launch-wrapper: option -$letter needs an argument" >&2
                        exit 255
                    fi
                    note_option "$letter" "$arg"
                    word=""
                fi
            done
            ;;
        *) break ;;
    esac
done

if (($# == 0)); then
    echo "oar-launch-wrapper: no host given" >&2
    exit 255
fi
host=$1
shift

# Only the local node exists; refuse anything else like ssh would (rc 255).
case "$host" in
    localhost | 127.0.0.1 | ::1 | "$(hostname)" | "$(hostname -f 2>/dev/null || true)") ;;
    *)
        echo "oar-launch-wrapper: $host is not this machine" >&2
        exit 255
        ;;
esac

if (($# == 0)); then
    echo "oar-launch-wrapper: no command given (interactive sessions are not supported)" >&2
    exit 255
fi

# Environment like an sshd session, plus the accepted SendEnv variables.
user=$(id -un)
home=$(getent passwd "$user" | cut -d: -f6)
env_args=(
    "HOME=${home:-/}" "USER=$user" "LOGNAME=$user"
    "SHELL=/usr/lib/oar/oarsh_shell"
    "PATH=/usr/local/bin:/usr/bin:/bin"
    "LANG=${LANG:-C.UTF-8}"
)
for name in "${send_env[@]}"; do
    if [[ " $ACCEPT_ENV " == *" $name "* && -n "${!name+x}" ]]; then
        env_args+=("$name=${!name}")
    fi
done

# Like sshd: the remote command is the words joined by spaces, run by the login shell.
exec env -i "${env_args[@]}" /usr/lib/oar/oarsh_shell -c "$*"
