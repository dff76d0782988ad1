# scripts/venv.sh: the Python environment of the README's two commands (sourced by them, not run).
#
# Both commands install into a virtual environment, never into the system's Python: Debian and Ubuntu refuse
# `pip install` there (PEP 668, "externally-managed-environment"), and a user's system packages are not ours
# to change. Which environment:
#   1. $PYTHON, when it names the interpreter of a virtual environment: that environment;
#   2. otherwise the active virtual environment ($VIRTUAL_ENV), when there is one and $PYTHON is unset;
#   3. otherwise the clone's own .venv, created with $PYTHON (default: python3 on PATH).
# Installs are skipped when a stamp in the environment says the same packages were installed from the same
# pyproject.toml files (editable installs follow source edits by themselves), so a second run costs no pip.
#
# mlxcore_venv                    sets MLXCORE_PY to the environment's python (creating .venv if needed)
# mlxcore_install STAMP ARGS...   "$MLXCORE_PY" -m pip install ARGS, unless STAMP says it is already done
# mlxcore_stamp_key FILES...      what a stamp records: the python, and a hash of the given files' contents

MLXCORE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

_mlxcore_die() { echo "mlxcore: $*" >&2; exit 2; }

# _mlxcore_usable PY: PY runs and is Python >= 3.10 (mlxcore's requires-python).
_mlxcore_usable() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

_mlxcore_in_venv() {  # _mlxcore_in_venv PY: PY is a virtual environment's interpreter
    "$1" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null
}

# _mlxcore_can_make_venv PY: PY has venv and ensurepip. Debian ships them apart (python3-venv); as root the
# package is installed, otherwise the user is told the one command that fixes it.
_mlxcore_can_make_venv() {
    local py=$1 version
    "$py" -c 'import ensurepip, venv' 2>/dev/null && return 0
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "mlxcore: $py has no venv module; installing Debian's python$version-venv" >&2
        apt-get -o DPkg::Lock::Timeout=600 -q update >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 -q install -y "python$version-venv" >/dev/null
        "$py" -c 'import ensurepip, venv' 2>/dev/null && return 0
    fi
    _mlxcore_die "$py cannot create a virtual environment (no venv/ensurepip). On Debian or Ubuntu:" \
        "sudo apt-get install python$version-venv; or set PYTHON to another Python >= 3.10"
}

mlxcore_venv() {
    local base=${PYTHON:-} venv="$MLXCORE_ROOT/.venv" resolved
    if [ -n "$base" ]; then
        resolved=$(command -v "$base") || _mlxcore_die "PYTHON=$base: no such interpreter"
        _mlxcore_usable "$resolved" || _mlxcore_die "PYTHON=$base: mlxcore needs Python >= 3.10," \
            "this is $("$resolved" --version 2>&1)"
        if _mlxcore_in_venv "$resolved"; then MLXCORE_PY=$resolved; return 0; fi
        base=$resolved
    elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
        _mlxcore_usable "$VIRTUAL_ENV/bin/python" || _mlxcore_die "the active virtual environment $VIRTUAL_ENV" \
            "has $("$VIRTUAL_ENV/bin/python" --version 2>&1); mlxcore needs Python >= 3.10"
        MLXCORE_PY=$VIRTUAL_ENV/bin/python
        return 0
    else
        base=$(command -v python3) || _mlxcore_die "no python3 on PATH; install Python >= 3.10" \
            "(Debian: sudo apt-get install python3 python3-venv) or set PYTHON"
        _mlxcore_usable "$base" || _mlxcore_die "python3 on PATH is $("$base" --version 2>&1);" \
            "mlxcore needs Python >= 3.10: set PYTHON to one"
    fi
    # The clone's .venv: kept while it works and, when PYTHON names a base, was made from that base.
    if [ -x "$venv/bin/python" ] && _mlxcore_usable "$venv/bin/python" \
        && { [ -z "${PYTHON:-}" ] || [ "$(cat "$venv/.mlxcore-base" 2>/dev/null)" = "$base" ]; }; then
        MLXCORE_PY=$venv/bin/python
        return 0
    fi
    _mlxcore_can_make_venv "$base"
    echo "mlxcore: creating $venv with $base ($("$base" --version 2>&1))" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv" || _mlxcore_die "cannot create $venv with $base"
    # the pip a distribution bundles can be old (Debian 12: 23.0, which builds some sdists the legacy way)
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
        || echo "mlxcore: could not upgrade pip in $venv; going on with $("$venv/bin/pip" --version)" >&2
    echo "$base" >"$venv/.mlxcore-base"
    MLXCORE_PY=$venv/bin/python
}

mlxcore_stamp_key() {
    "$MLXCORE_PY" - "$@" <<'PY'
import hashlib, sys
digest = hashlib.sha256(sys.version.encode() + sys.executable.encode())
for name in sorted(sys.argv[1:]):
    digest.update(name.encode() + b"\0")
    with open(name, "rb") as handle:
        digest.update(handle.read())
print(digest.hexdigest())
PY
}

# mlxcore_install STAMP -- KEYFILES... -- PIP_ARGS...: install unless the stamp matches this time's key
# (the key covers the pip arguments and the contents of KEYFILES, typically the pyproject.toml files).
mlxcore_install() {
    local stamp=$1 files=() key stamp_file
    shift
    [ "$1" = "--" ] && shift
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
    shift
    key=$( { mlxcore_stamp_key "${files[@]}"; printf '%s\n' "$@"; } | sha256sum | cut -d' ' -f1)
    stamp_file=$("$MLXCORE_PY" -c 'import sys; print(sys.prefix)')/.mlxcore-stamps/$stamp
    if [ "$(cat "$stamp_file" 2>/dev/null)" = "$key" ]; then
        echo "mlxcore: $stamp is up to date in $(dirname "$(dirname "$stamp_file")")" >&2
        return 0
    fi
    echo "mlxcore: installing $stamp into $(dirname "$(dirname "$stamp_file")")" >&2
    "$MLXCORE_PY" -m pip install --quiet --disable-pip-version-check "$@"
    mkdir -p "$(dirname "$stamp_file")"
    echo "$key" >"$stamp_file"
}
