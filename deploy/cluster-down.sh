#!/usr/bin/env bash
# Stop fedot's local deployment (every process `deploy/cluster-up.sh` started, with their
# SuperExecs and apps): a thin wrapper over `fedot cluster down`. Certificates and keys are kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedot="$root/.venv/bin/fedot"
[[ -x $fedot ]] || fedot="$(command -v fedot)" || { echo "fedot not found: run 'make install'" >&2; exit 1; }
cd "$root"
exec "$fedot" cluster down "$@"
