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
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${1:-client_credentials}"
case "$SCENARIO" in client_credentials|jwt_bearer|private_key_jwt) ;; *) echo "unknown scenario $SCENARIO" >&2; exit 2;; esac
DURATION="${DURATION:-$([ "$SCENARIO" = client_credentials ] && echo 25s || echo 10s)}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --quiet

work="$(mktemp -d)"
trap 'kill "$pid" ${jwks_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/conf" "$work/dropins" "$work/jwks"
cat > "$work/conf/deployment.toml" <<TOML
[server]
bind = "127.0.0.1:0"
[server.tls]
enabled = false
[super_admin]
password = "bench-admin"
[plugins]
dropins_dir = "dropins"
TOML
if [ "$SCENARIO" != client_credentials ]; then
  cp target/release/libtollgate_jwks_validator.so target/release/libtollgate_jwt_bearer.so \
     target/release/libtollgate_private_key_jwt.so "$work/dropins/"
  cat > "$work/conf/identity.xml" <<XML
<Server>
  <OAuth><SupportedGrantTypes><SupportedGrantType>
    <GrantTypeName>urn:ietf:params:oauth:grant-type:jwt-bearer</GrantTypeName>
    <GrantTypeHandlerImplClass>org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler</GrantTypeHandlerImplClass>
  </SupportedGrantType></SupportedGrantTypes></OAuth>
  <EventListeners>
    <EventListener name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler" orderId="100" enable="true"/>
    <EventListener name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator" orderId="899" enable="true"/>
    <EventListener name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator" orderId="10" enable="true"/>
  </EventListeners>
</Server>
XML
else
  printf '<Server/>\n' > "$work/conf/identity.xml"
fi
TOLLGATE_LOG=warn target/release/tollgate serve --conf "$work/conf" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
url="$(sed -n 's/^Tollgate listening on //p' "$work/out")"
[ -n "$url" ] || { cat "$work/err"; exit 1; }

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

register() {
  curl -sf -u admin:bench-admin -H 'content-type: application/json' -d "$1" \
    "$url/api/identity/oauth2/dcr/v1.1/register" \
    | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["client_id"], c.get("client_secret", ""))'
}

if [ "$SCENARIO" = client_credentials ]; then
  read -r id secret < <(register '{"client_name":"bench","grant_types":["client_credentials"]}')
  export CLIENT_BASIC="$(printf '%s:%s' "$id" "$secret" | base64 -w0)"
  echo "client_credentials + client_secret_basic, opaque tokens, SQLite, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  profile
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/client_credentials.lua "$url/oauth2/token" | tee "$work/wrk"
  report
  echo "server RSS: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
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
echo "$what, opaque tokens, SQLite, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
profile
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/assertions.lua "$url/oauth2/token" | tee "$work/wrk"
report
echo "JWKS fetches: $(curl -s "$url/metrics" | awk '/^tollgate_jwks_fetches_total/ {print $2}')"
echo "server RSS: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
