#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root) or a developer's checkout.
#
# Installs mlxcore, every plugin under plugins/ and the test dependencies; starts a real one-node SLURM and
# OAR on localhost when their plugins are present (scripts/clusters/, root only) and stops them, by the PIDs
# they recorded, when the tests end; then runs pytest over the core and every plugin. Extra arguments go to
# pytest. With CI=true the cluster tests never skip: a cluster that cannot start is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

# 1. The core alone: a non-editable `pip install .` in a fresh venv, no plugin installed, passes its tests.
#    (Run from outside the checkout so the installed package, not the source tree, is imported.)
if [ "${MLXCORE_SKIP_CORE_ALONE:-0}" != 1 ]; then
    alone=$(mktemp -d)
    "$PY" -m venv "$alone/venv"
    "$alone/venv/bin/python" -m pip install --quiet --disable-pip-version-check ".[test]"
    (cd "$alone" && "$alone/venv/bin/python" -m pytest "$OLDPWD/tests" -q -p no:cacheprovider \
        --import-mode=importlib --rootdir "$alone")
    rm -rf "$alone"
fi

# 2. Everything: the core and every plugin, editable, against real clusters.
pip_install -e ".[test]"
# torch is optional for users; the tests exercise the torch artifact format (the CPU build of 2.13.0 is the
# one these machines carry on disk, so this does not download a CUDA build)
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0" || echo "test.sh: torch not installed; its format test will skip" >&2
plugin_dirs=()
for dir in plugins/*/; do
    [ -f "$dir/pyproject.toml" ] || continue
    pip_install -e "$dir"
    plugin_dirs+=("${dir}tests")
done

started=()
cleanup() {
    local cluster
    for cluster in "${started[@]}"; do scripts/clusters/"$cluster"-down.sh || true; done
}
trap cleanup EXIT
start_cluster() {  # start_cluster NAME: a real cluster for plugins/mlx_NAME's tests
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: not root, $1 is not started; its tests will skip (they fail under CI=true)" >&2
        return 0
    fi
    local out
    out=$(scripts/clusters/"$1"-up.sh 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" >&2
    case "$out" in  # a cluster someone else started (another session's tests) is theirs to stop
        *"already up"*) ;;
        *) started+=("$1") ;;
    esac
}
[ -d plugins/mlx_slurm ] && start_cluster slurm
[ -d plugins/mlx_oar ] && start_cluster oar

"$PY" -m pytest tests "${plugin_dirs[@]}" "$@"
