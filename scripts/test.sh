#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root) or a developer's checkout.
#
# Installs mlxcore, every plugin under plugins/ and the test dependencies into a virtual environment (the
# clone's .venv, or the active one: see scripts/venv.sh; a second run installs nothing that is up to date);
# first checks the code with ruff and mypy (configured in pyproject.toml; a few seconds, so a lint or type error
# fails before any test runs); starts a real one-node SLURM and OAR on localhost when their plugins are present
# (scripts/clusters/, root only) and stops them, by the PIDs they recorded, when the tests end; then runs pytest
# over the core and every plugin. Extra arguments go to pytest. With CI=true the cluster tests never skip: a
# cluster that cannot start is a failure.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$MLXCORE_ROOT"
mlxcore_venv
PY=$MLXCORE_PY

# The core and every plugin, editable, with the test dependencies (ruff and mypy among them).
plugin_projects=()
plugin_dirs=()
plugin_packages=()
for dir in plugins/*/; do
    [ -f "$dir/pyproject.toml" ] || continue
    plugin_projects+=("$dir/pyproject.toml")
    plugin_dirs+=("${dir}tests")
    for package in "$dir"*/__init__.py; do  # the plugin's import packages (its tests are not type-checked)
        [ -f "$package" ] && [ "$(basename "$(dirname "$package")")" != tests ] \
            && plugin_packages+=("$(dirname "$package")")
    done
done
plugin_editables=()
for project in "${plugin_projects[@]}"; do plugin_editables+=(-e "$(dirname "$project")"); done
mlxcore_install test -- pyproject.toml "${plugin_projects[@]}" -- -e ".[test]" "${plugin_editables[@]}"

# Headless Chromium and its driver, Debian's packages, for the browser tests of the report and the UI
# (tests/test_report.py, tests/test_ui.py,
# driven by Selenium): installed once, as root, before any phase runs those tests; without them the tests skip
# (under CI=true they fail instead).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "test.sh: installing Debian's chromium and chromium-driver (the report's browser tests)" >&2
        apt-get -o DPkg::Lock::Timeout=600 -q update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q install -y chromium chromium-driver \
            >/dev/null
    else
        echo "test.sh: no chromium/chromedriver and not root: the report's browser tests will skip" \
            "(they fail under CI=true)" >&2
    fi
fi

# 1. Lint and types, over the core and every plugin: both run, either failing fails the script.
checks_failed=0
echo "test.sh: ruff check mlxcore plugins examples" >&2
"$PY" -m ruff check mlxcore plugins examples || checks_failed=1
echo "test.sh: mypy mlxcore ${plugin_packages[*]}" >&2
"$PY" -m mypy mlxcore "${plugin_packages[@]}" || checks_failed=1
if [ "$checks_failed" -ne 0 ]; then
    echo "test.sh: ruff or mypy failed (above); no test was run" >&2
    exit 1
fi

# 2. The core alone: a non-editable `pip install .` in a venv of its own (.venv-core-alone, made from the
#    same base Python), no plugin installed, passes its tests. Run from outside the checkout so the installed
#    package, not the source tree, is imported. Reinstalled only when a file of the package changed.
if [ "${MLXCORE_SKIP_CORE_ALONE:-0}" != 1 ]; then
    alone_venv=$MLXCORE_ROOT/.venv-core-alone
    [ -x "$alone_venv/bin/python" ] || "$PY" -m venv "$alone_venv"
    mapfile -t package_files < <(find pyproject.toml README.md mlxcore -type f -not -path '*/__pycache__/*')
    (MLXCORE_PY=$alone_venv/bin/python
     mlxcore_install core-alone -- "${package_files[@]}" -- ".[test]")
    alone=$(mktemp -d)
    trap 'rm -rf "$alone"' EXIT
    (cd "$alone" && "$alone_venv/bin/python" -m pytest "$MLXCORE_ROOT/tests" -q -p no:cacheprovider \
        --import-mode=importlib --rootdir "$alone")
    rm -rf "$alone"
    trap - EXIT
fi

# 3. Everything: the core and every plugin, editable (installed above), against real clusters.
# torch is optional for users; the tests exercise the torch artifact format (the CPU build of 2.13.0 is the
# one these machines carry on disk, so this does not download a CUDA build)
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0" \
    || echo "test.sh: torch not installed; its format test will skip" >&2

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
