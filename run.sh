#!/usr/bin/env bash
# spiketwin set-up and entry point on a fresh machine:
#   bash run.sh flow    set up, then run the main job on the built-in defaults
#   bash run.sh test    set up, then run the test suite (what CI runs)
# Anything after the first word is passed on (spiketwin flow options, or pytest options).
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  if ! command -v iverilog >/dev/null 2>&1; then
    echo "run.sh: installing Icarus Verilog (Debian package iverilog)" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq iverilog >/dev/null
  fi
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import spiketwin, amaranth, cocotb" # fail here, not halfway through a job
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  flow)
    setup
    exec .venv/bin/spiketwin flow "$@"
    ;;
  test)
    setup
    exec .venv/bin/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider --durations=15 "$@"
    ;;
  *)
    echo "usage: bash run.sh flow|test [options]" >&2
    exit 2
    ;;
esac
