#!/usr/bin/env bash
# Runs testssl.sh (Debian package `testssl.sh`) against a Gatehouse TLS listener with default TLS
# settings: a throwaway CA and certificate for localhost/127.0.0.1, a tiny backend, loopback only.
# Prints testssl's report and leaves its JSON in the temp dir it names. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v testssl >/dev/null || { echo "testssl is not installed (apt-get install testssl.sh)" >&2; exit 1; }
dir=$(mktemp -d)
node=node_modules/.bin/node
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 2 -subj "/CN=testssl CA" -out "$dir/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/leaf.key"
openssl req -new -key "$dir/leaf.key" -subj "/CN=localhost" -out "$dir/leaf.csr"
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 -sha256 \
  -extfile "$dir/ext" -out "$dir/leaf.pem" 2>/dev/null
cat "$dir/leaf.pem" "$dir/ca.pem" > "$dir/chain.pem"
port=${TESTSSL_PORT:-18443}
backend=$((port + 1))
cat > "$dir/gatehouse.yaml" <<YAML
listeners:
  - name: secure
    address: "127.0.0.1:$port"
    tls: { certificates: [{ certFile: $dir/chain.pem, keyFile: $dir/leaf.key }] }
accessLog: { enabled: false }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:$backend" }] } }
YAML
$node scripts/tiny-origin.ts "$backend" >/dev/null &
origin_pid=$!
$node src/cli.ts run -c "$dir/gatehouse.yaml" 2>"$dir/gatehouse.log" &
gh_pid=$!
trap 'kill $gh_pid $origin_pid 2>/dev/null || true' EXIT
sleep 2
testssl --quiet --color 0 --warnings batch --jsonfile "$dir/testssl.json" "127.0.0.1:$port" || true
echo "JSON: $dir/testssl.json"
