#!/usr/bin/env bash
# A cached Python 3.12 virtualenv with helm-sdkpy: Helm's own Go library, callable from Python.
#
# No helm binary can be installed on our machines, and helm-sdkpy (which bundles the library)
# needs Python >= 3.12 while the project runs on 3.11; pyenv has 3.12 (test-infra.md §5).
# The chart tests (tests/chart) call this venv's python in a subprocess.
#
# Usage: scripts/helm-env.sh [VENV_DIR]   (default .venv-helm); prints the venv's python path.
# Re-running is cheap: a stamp file records the installed requirement.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv-helm}
REQUIREMENT="helm-sdkpy==0.1.32"
STAMP="$VENV/.installed-${REQUIREMENT}"

find_python312() {
  if [ -n "${HELM_PYTHON:-}" ]; then
    echo "$HELM_PYTHON"
    return
  fi
  local candidate root=""
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
  fi
  # pyenv's shims exist for every installed version but fail outside it: try each one for real.
  for candidate in python3.12 python3.13 ${root:+"$root"/versions/3.12.*/bin/python} \
                   ${root:+"$root"/versions/3.13.*/bin/python}; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      command -v "$candidate"
      return
    fi
  done
  echo "no Python >= 3.12 found (helm-sdkpy needs it); set HELM_PYTHON or install one" >&2
  return 1
}

if [ ! -f "$STAMP" ]; then
  python=$(find_python312)
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$REQUIREMENT" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  touch "$STAMP"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
