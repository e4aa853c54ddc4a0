#!/usr/bin/env bash
# End-to-end benchmark: Gatehouse side by side with nginx, HAProxy and two Node proxies.
# Installs the Debian packages it needs (nginx, haproxy, wrk), then runs bench/run.ts, or with
# `failover` as the first argument bench/failover.ts (one backend killed under load), with `h2`
# bench/h2.ts (HTTP/2 over TLS with h2load), or with `idle` bench/idle.ts (memory with 10,000 idle
# keep-alive clients).
# Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_CONNECTIONS (64), BENCH_ONLY (comma list).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for cmd in nginx haproxy wrk taskset h2load openssl; do command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "bench: missing ${need[*]}; install nginx-light haproxy wrk util-linux" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx-light haproxy wrk util-linux nghttp2-client openssl >/dev/null
fi
# nginx's brotli module for the compression rows (without it they compare against nginx's gzip).
if [ "$(id -u)" = 0 ] && ! ls /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends libnginx-mod-http-brotli-filter >/dev/null 2>&1 || true
fi
if [ "$(nproc)" -lt 2 ]; then echo "bench: needs 2 cores (proxy on one, load on the other)" >&2; exit 1; fi
script=run
if [ "${1:-}" = failover ] || [ "${1:-}" = h2 ] || [ "${1:-}" = idle ]; then script=$1; shift; fi
# The idle-connections bench holds 10,000 sockets on each side.
ulimit -n 65536 2>/dev/null || true
exec node "bench/$script.ts" "$@"
