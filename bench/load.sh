#!/usr/bin/env bash
# Load test over loopback: builds release, starts Tollgate on SQLite with TLS off, registers a
# client, and drives client_credentials + client_secret_basic with wrk (installed from Debian's
# packages if missing). Prints req/s, p50, p99 and the error count, and the server's RSS.
#   ./bench/load.sh                 # 25 s, 1 thread, 32 connections
#   DURATION=10s CONNECTIONS=64 ./bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-25s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p tollgate-host --quiet

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/conf"
cat > "$work/conf/deployment.toml" <<TOML
[server]
bind = "127.0.0.1:0"
[server.tls]
enabled = false
[super_admin]
password = "bench-admin"
TOML
printf '<Server/>\n' > "$work/conf/identity.xml"
TOLLGATE_LOG=warn target/release/tollgate serve --conf "$work/conf" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
url="$(sed -n 's/^Tollgate listening on //p' "$work/out")"
[ -n "$url" ] || { cat "$work/err"; exit 1; }

client="$(curl -sf -u admin:bench-admin -H 'content-type: application/json' \
  -d '{"client_name":"bench","grant_types":["client_credentials"]}' \
  "$url/api/identity/oauth2/dcr/v1.1/register")"
id="$(printf '%s' "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')"
secret="$(printf '%s' "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')"
export CLIENT_BASIC="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"

echo "client_credentials + client_secret_basic, opaque tokens, SQLite, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/client_credentials.lua "$url/oauth2/token" | tee "$work/wrk"
echo "server RSS: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
