#!/usr/bin/env bash
# Generate SuperNode authentication key pairs: EC P-384 (secp384r1), OpenSSH format (ssh-keygen).
#
#   deploy/supernode-keys.sh OUT_DIR N
#
# Writes OUT_DIR/supernode-I (private key, stays on SuperNode I) and OUT_DIR/supernode-I.pub
# (public key, registered with `flwr supernode register OUT_DIR/supernode-I.pub CONNECTION`)
# for I = 0..N-1. Existing keys are kept: a SuperNode keeps its identity (and node id) as long as
# it keeps its key.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 OUT_DIR N" >&2
    exit 2
fi
out=$1
n=$2
mkdir -p "$out"
for ((i = 0; i < n; i++)); do
    key="$out/supernode-$i"
    if [[ ! -s $key || ! -s $key.pub ]]; then
        rm -f "$key" "$key.pub"
        ssh-keygen -q -t ecdsa -b 384 -N "" -C "fedot-supernode-$i" -f "$key"
    fi
done
echo "SuperNode keys in $out: supernode-0 .. supernode-$((n - 1)) (+ .pub)"
