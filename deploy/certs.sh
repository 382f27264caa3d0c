#!/usr/bin/env bash
# Generate a private CA and a SuperLink server certificate signed by it (openssl; EC P-384 keys,
# SHA-384 signatures).
#
#   deploy/certs.sh OUT_DIR [SAN ...]
#
# Writes, once (existing files are kept, so running it again changes nothing):
#   OUT_DIR/ca.key      CA private key          (keep secret; only needed to sign more certificates)
#   OUT_DIR/ca.crt      CA certificate          (copy to every SuperNode and `flwr` CLI machine)
#   OUT_DIR/server.key  SuperLink private key   (stays on the SuperLink host)
#   OUT_DIR/server.pem  SuperLink certificate   (stays on the SuperLink host)
#
# The server certificate is valid for DNS:localhost, IP:127.0.0.1, IP:::1 and DNS:superlink (the
# compose service name) plus every extra SAN given, e.g. `DNS:fl.example.org IP:192.0.2.10`: list
# every name or address SuperNodes use in `--superlink HOST:PORT`.
# Environment: DAYS (validity, default 365), CA_CN (default fedot-ca).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 OUT_DIR [SAN ...]   (SAN like DNS:host.example.org or IP:192.0.2.10)" >&2
    exit 2
fi
out=$1
shift
days=${DAYS:-365}
mkdir -p "$out"
cd "$out"
if [[ -s ca.crt && -s server.pem && -s server.key ]]; then
    echo "certificates already in $PWD (delete them to regenerate)"
    exit 0
fi
umask 077

sans="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:superlink"
for san in "$@"; do
    case $san in
        DNS:*|IP:*) sans="$sans,$san" ;;
        *) echo "error: SAN '$san' must start with DNS: or IP:" >&2; exit 2 ;;
    esac
done

cat > server.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_req]
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
CNF

openssl ecparam -name secp384r1 -genkey -noout -out ca.key
openssl req -x509 -new -nodes -key ca.key -sha384 -days "$days" -subj "/CN=${CA_CN:-fedot-ca}" \
    -config server.cnf -extensions v3_ca -out ca.crt
openssl ecparam -name secp384r1 -genkey -noout -out server.key
openssl req -new -key server.key -config server.cnf -out server.csr
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.pem \
    -days "$days" -sha384 -extfile server.cnf -extensions v3_req 2>/dev/null
rm -f server.csr ca.srl
chmod 644 ca.crt server.pem
echo "wrote $PWD/{ca.crt,ca.key,server.pem,server.key} (SAN $sans)"
