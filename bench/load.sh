#!/usr/bin/env bash
# Load test over loopback: builds release, starts Tollgate on SQLite with TLS off, registers a
# client, and drives one scenario with wrk (installed from Debian's packages if missing).
# Prints req/s, p50, p99 and the error count, and the server's RSS.
#   ./bench/load.sh                      # client_credentials + client_secret_basic, opaque tokens
#   ./bench/load.sh jwt_bearer           # JWT bearer grant, RS256 assertions (unique jti each)
#                                        # from an IdP whose JWKS a loopback server publishes
#   ./bench/load.sh private_key_jwt      # client_credentials, the client authenticated by RS256
#                                        # client assertions (unique jti each), JWKS as above
#   DURATION=10s CONNECTIONS=64 ./bench/load.sh
#   ASSERTIONS_COUNT=200000 ./bench/load.sh jwt_bearer   # assertions minted beforehand
#   PERF=1 ./bench/load.sh jwt_bearer    # also samples the server with perf and prints its top
#                                        # (PERF_SORT=dso for the split by library)
#   STRACE=1 ./bench/load.sh jwt_bearer  # counts the server's system calls instead
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test HOSTS=2 ./bench/load.sh jwt_bearer
#                                        # HOSTS servers on one PostgreSQL database (made for the
#                                        # run on that server, dropped after), one wrk per host
#                                        # with CONNECTIONS/HOSTS connections; figures summed
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${1:-client_credentials}"
case "$SCENARIO" in client_credentials|jwt_bearer|private_key_jwt) ;; *) echo "unknown scenario $SCENARIO" >&2; exit 2;; esac
DURATION="${DURATION:-$([ "$SCENARIO" = client_credentials ] && echo 25s || echo 10s)}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --quiet

HOSTS="${HOSTS:-1}"
work="$(mktemp -d)"
pids=()
cleanup() {
  kill "${pids[@]}" ${jwks_pid:-} 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${bench_db:-}" ] && psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/dropins" "$work/jwks"
if [ -n "${POSTGRES_URL:-}" ]; then
  bench_db="tollgate_bench_$$"
  psql -q "$POSTGRES_URL" -c "CREATE DATABASE $bench_db"
  database="${POSTGRES_URL%/*}/$bench_db"
  backend=PostgreSQL
elif [ "$HOSTS" -gt 1 ]; then
  echo "HOSTS > 1 needs POSTGRES_URL (several hosts share one PostgreSQL database)" >&2; exit 2
else
  database="sqlite://data/tollgate.db"
  backend=SQLite
fi
if [ "$SCENARIO" != client_credentials ]; then
  cp target/release/libtollgate_jwks_validator.so target/release/libtollgate_jwt_bearer.so \
     target/release/libtollgate_private_key_jwt.so "$work/dropins/"
  identity='<Server>
  <OAuth><SupportedGrantTypes><SupportedGrantType>
    <GrantTypeName>urn:ietf:params:oauth:grant-type:jwt-bearer</GrantTypeName>
    <GrantTypeHandlerImplClass>org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler</GrantTypeHandlerImplClass>
  </SupportedGrantType></SupportedGrantTypes></OAuth>
  <EventListeners>
    <EventListener name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler" orderId="100" enable="true"/>
    <EventListener name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator" orderId="899" enable="true"/>
    <EventListener name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator" orderId="10" enable="true"/>
  </EventListeners>
</Server>'
else
  identity='<Server/>'
fi
# Every host has its own conf and data dir; they share the dropins and the server secret.
head -c 32 /dev/urandom > "$work/server-secret"
urls=()
for h in $(seq "$HOSTS"); do
  dir="$work/host-$h"
  mkdir -p "$dir/conf" "$dir/data"
  cp "$work/server-secret" "$dir/data/server-secret"
  printf '%s\n' "$identity" > "$dir/conf/identity.xml"
  cat > "$dir/conf/deployment.toml" <<TOML
[server]
bind = "127.0.0.1:0"
[server.tls]
enabled = false
[super_admin]
password = "bench-admin"
[database]
url = "$database"
[plugins]
dropins_dir = "$work/dropins"
TOML
  TOLLGATE_LOG=warn target/release/tollgate serve --conf "$dir/conf" > "$dir/out" 2> "$dir/err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
  u="$(sed -n 's/^Tollgate listening on //p' "$dir/out")"
  [ -n "$u" ] || { cat "$dir/err"; exit 1; }
  urls+=("$u")
done
pid="${pids[0]}"
url="${urls[0]}"

# With PERF=1: samples the server for 5 s from 2 s into the run; `report` prints the top.
# With STRACE=1: counts the server's system calls for 5 s instead.
profile() {
  if [ -n "${STRACE:-}" ]; then
    (sleep 2; timeout 5 strace -c -f -p "$pid" -o "$work/strace" >/dev/null 2>&1) &
    perf_pid=$!
    return 0
  fi
  [ -n "${PERF:-}" ] || return 0
  (sleep 2; perf record -F 499 -g -p "$pid" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1) &
  perf_pid=$!
}
report() {
  if [ -n "${STRACE:-}" ]; then
    wait "$perf_pid" || true
    head -20 "$work/strace"
    return 0
  fi
  [ -n "${PERF:-}" ] || return 0
  wait "$perf_pid"
  perf report -i "$work/perf.data" --no-children --sort "${PERF_SORT:-symbol}" --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -40 | cut -c1-140
}

# wrk against every host at once (CONNECTIONS shared out; with assertions, each host gets its
# own slice of them), each run's output, then for several hosts the sum of their RESULT lines.
drive() {
  local script="$1"
  if [ "$HOSTS" -eq 1 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url/oauth2/token" | tee "$work/wrk"
    return
  fi
  [ -z "${ASSERTIONS:-}" ] || split -n "l/$HOSTS" -d -a 2 "$ASSERTIONS" "$work/slice."
  local i runs=()
  for i in $(seq 0 $((HOSTS - 1))); do
    ASSERTIONS="$work/slice.$(printf %02d "$i")" wrk -t"$THREADS" -c$((CONNECTIONS / HOSTS)) \
      -d"$DURATION" --latency -s "$script" "${urls[$i]}/oauth2/token" > "$work/wrk.$i" &
    runs+=($!)
  done
  wait "${runs[@]}"
  for i in $(seq 0 $((HOSTS - 1))); do echo "host $((i + 1)): $(grep RESULT "$work/wrk.$i")"; done
  cat "$work"/wrk.* | awk -F'[ =]' -v hosts="$HOSTS" '/^RESULT/ {rps += $3; if ($7 > p99) p99 = $7; errors += $9}
    END {printf "RESULT hosts=%d req_per_s=%.0f p99_ms(max)=%.2f errors=%d\n", hosts, rps, p99, errors}'
}

rss() {
  local p
  for p in "${pids[@]}"; do
    echo "server RSS: $(( $(awk '/VmRSS/ {print $2}' /proc/$p/status) / 1024 )) MiB"
  done
}

register() {
  curl -sf -u admin:bench-admin -H 'content-type: application/json' -d "$1" \
    "$url/api/identity/oauth2/dcr/v1.1/register" \
    | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["client_id"], c.get("client_secret", ""))'
}

if [ "$SCENARIO" = client_credentials ]; then
  read -r id secret < <(register '{"client_name":"bench","grant_types":["client_credentials"]}')
  export CLIENT_BASIC="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  echo "client_credentials + client_secret_basic, opaque tokens, $backend, $HOSTS host(s), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  profile
  drive bench/client_credentials.lua
  report
  rss
  exit 0
fi

# The assertion scenarios: a JWKS (the RSA test key, kid "bench") served over loopback HTTP.
python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); k["kid"]="bench"; print(json.dumps({"keys":[k]}))' \
  tests/fixtures/keys/rsa-2048.jwk.json > "$work/jwks/jwks.json"
python3 -c '
import http.server, socketserver, sys, os
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
with socketserver.TCPServer(("127.0.0.1", 0), Quiet) as s:
    print(s.server_address[1], flush=True); s.serve_forever()' "$work/jwks" > "$work/jwks.port" &
jwks_pid=$!
for _ in $(seq 50); do [ -s "$work/jwks.port" ] && break; sleep 0.1; done
jwks_uri="http://127.0.0.1:$(cat "$work/jwks.port")/jwks.json"
aud=https://localhost:9443/oauth2/token
if [ "$SCENARIO" = jwt_bearer ]; then
  read -r id secret < <(register '{"client_name":"bench","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}')
  export CLIENT_BASIC="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  curl -sf -u admin:bench-admin -H 'content-type: application/json' \
    -d "{\"name\":\"https://bench-idp.example\",\"certificate\":{\"jwksUri\":\"$jwks_uri\"}}" \
    "$url/api/server/v1/identity-providers" > /dev/null
  iss=https://bench-idp.example sub=alice
  export BODY_PREFIX="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
  what="jwt-bearer (RS256, unique jti, cached JWKS) + client_secret_basic"
else
  read -r id _ < <(register "{\"client_name\":\"bench\",\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":\"private_key_jwt\",\"jwks_uri\":\"$jwks_uri\"}")
  export CLIENT_BASIC=""
  iss="$id" sub="$id"
  export BODY_PREFIX="grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
  what="client_credentials + private_key_jwt (RS256, unique jti, cached JWKS)"
fi
count="${ASSERTIONS_COUNT:-150000}"
echo "minting $count RS256 assertions…"
target/release/tollgate assertion --key tests/fixtures/keys/rsa-2048.pem --alg RS256 --kid bench \
  --iss "$iss" --sub "$sub" --aud "$aud" --lifetime 900 --count "$count" > "$work/assertions"
export ASSERTIONS="$work/assertions"
echo "$what, opaque tokens, $backend, $HOSTS host(s), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
profile
drive bench/assertions.lua
report
for u in "${urls[@]}"; do
  echo "JWKS fetches ($u): $(curl -s "$u/metrics" | awk '/^tollgate_jwks_fetches_total/ {print $2}')"
done
rss
