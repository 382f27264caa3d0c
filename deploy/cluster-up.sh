#!/usr/bin/env bash
# Start fedot's local deployment on 127.0.0.1: a thin wrapper over `fedot cluster up`.
#
#   deploy/cluster-up.sh [--mode insecure|tls|auth] [--nodes N] [--isolation subprocess|process]
#                        [--port 19090] [--node-port 19094] [--timeout 60]
#
# insecure: plain HTTP, connection `fedot-local`. tls: HTTPS with a private CA generated once by
# deploy/certs.sh, connection `fedot-tls`. auth: TLS + SuperNode authentication (EC P-384 keys from
# deploy/supernode-keys.sh, registered with `flwr supernode register` before each node starts),
# connection `fedot-auth`. State, logs, certificates and keys: <project>/.flwr/cluster/
# ($FEDOT_FLWR_HOME/cluster if set). Then: fedot run --backend <connection> --clients N.
# Stop with deploy/cluster-down.sh. Uses the project's .venv when there is one, else `fedot` on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedot="$root/.venv/bin/fedot"
[[ -x $fedot ]] || fedot="$(command -v fedot)" || { echo "fedot not found: run 'make install'" >&2; exit 1; }
cd "$root"
exec "$fedot" cluster up "$@"
