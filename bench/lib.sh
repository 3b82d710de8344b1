# shellcheck shell=bash
# Shared pieces of bench/load.sh and bench/run.sh; sourced from the repository root, under
# `set -euo pipefail`. Everything a run makes lives in $BENCH_WORK (a temp dir, removed at exit,
# with every process started here stopped).

# shellcheck disable=SC2034 # the constants are used by the scripts that source this file
BENCH_ADMIN_PASSWORD=bench-admin
# The audience Tollgate's assertions carry: its token endpoint URL for the default base_url.
BENCH_TOLLGATE_AUD=https://localhost:9443/oauth2/token
JWT_BEARER_FORM="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
PRIVATE_KEY_JWT_FORM="grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="

# The temp work dir and the exit trap that stops what was started and removes it (KEEP_WORK=1
# keeps it, with the servers' logs and wrk's output, for looking into a failure).
bench_init() {
  BENCH_WORK="$(mktemp -d)"
  BENCH_PIDS=()
  BENCH_DB=""
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$BENCH_DB" ]; then
    psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" || true
  fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $BENCH_WORK" >&2; else rm -rf "$BENCH_WORK"; fi
}

# wrk from Debian's packages when missing; the release build of the whole workspace (NO_BUILD=1:
# the binaries in target/release as they are, e.g. another commit's, for an A/B comparison).
bench_need_wrk() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  [ -z "${INSTRUCTIONS:-}" ] || command -v valgrind >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
}
bench_build() {
  [ -n "${NO_BUILD:-}" ] || cargo build --release --workspace --quiet
}

# Copies the bundled plugins into $BENCH_WORK/dropins (none with INPROC=1: see bench_start_tollgate).
bench_dropins() {
  mkdir -p "$BENCH_WORK/dropins"
  [ -z "${INPROC:-}" ] || return 0
  cp target/release/libtollgate_jwks_validator.so target/release/libtollgate_jwt_bearer.so \
     target/release/libtollgate_private_key_jwt.so "$BENCH_WORK/dropins/"
}

# bench_start_tollgate DIR DATABASE_URL IDENTITY_XML_FILE [SERVER_SECRET_FILE]
# Starts `tollgate serve` over plain HTTP on a free loopback port with its conf and data in DIR;
# sets TOLLGATE_URL and TOLLGATE_PID (also added to BENCH_PIDS). With INPROC=1 it starts
# `tollgate-inproc serve` instead (bench/inproc): the same server with the bundled plugins
# compiled in rather than loaded, which measures what the plugin ABI costs them.
bench_start_tollgate() {
  local dir="$1" database="$2" identity="$3" secret="${4:-}"
  mkdir -p "$dir/conf" "$dir/data" "$BENCH_WORK/dropins"
  [ -z "$secret" ] || cp "$secret" "$dir/data/server-secret"
  cp "$identity" "$dir/conf/identity.xml"
  cat > "$dir/conf/deployment.toml" <<TOML
[server]
bind = "127.0.0.1:0"
[server.tls]
enabled = false
[super_admin]
password = "$BENCH_ADMIN_PASSWORD"
[database]
url = "$database"
[plugins]
dropins_dir = "$BENCH_WORK/dropins"
TOML
  # With INSTRUCTIONS=1, under callgrind, counting nothing until told (bench/load.sh).
  local under=()
  [ -z "${INSTRUCTIONS:-}" ] || under=(valgrind -q --tool=callgrind --instr-atstart=no
    --callgrind-out-file="$dir/callgrind.out")
  TOLLGATE_LOG="${TOLLGATE_LOG:-warn}" "${under[@]}" "target/release/tollgate${INPROC:+-inproc}" \
    serve --conf "$dir/conf" > "$dir/out" 2> "$dir/err" &
  TOLLGATE_PID=$!
  BENCH_PIDS+=("$TOLLGATE_PID")
  local _
  for _ in $(seq 600); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
  TOLLGATE_URL="$(sed -n 's/^Tollgate listening on //p' "$dir/out")"
  [ -n "$TOLLGATE_URL" ] || { cat "$dir/err" >&2; echo "Tollgate did not start" >&2; exit 1; }
}

# bench_jwks_serve KEY ALG KID: serves the public JWKS of KEY on a free loopback port with
# `tollgate jwks --serve`; sets JWKS_URI.
bench_jwks_serve() {
  local key="$1" alg="$2" kid="$3" out
  out="$(mktemp -p "$BENCH_WORK" jwks.XXXX)"
  target/release/tollgate jwks --key "$key" --alg "$alg" --kid "$kid" --serve 127.0.0.1:0 \
    > "$out" 2>&1 &
  BENCH_PIDS+=("$!")
  local _
  for _ in $(seq 50); do grep -q "JWKS served at" "$out" && break; sleep 0.1; done
  JWKS_URI="$(sed -n 's/^JWKS served at //p' "$out")"
  [ -n "$JWKS_URI" ] || { cat "$out" >&2; echo "tollgate jwks did not start" >&2; exit 1; }
}

# bench_keygen DIR: an EC P-256 and an Ed25519 PKCS#8 private key for the run (ec-a.pem,
# ec-b.pem, ed25519.pem), made with openssl (installed from Debian's packages when missing).
bench_keygen() {
  local dir="$1"
  command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
  mkdir -p "$dir"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ec-a.pem" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ec-b.pem" 2>/dev/null
  openssl genpkey -algorithm ed25519 -out "$dir/ed25519.pem" 2>/dev/null
}

# bench_mint KEY ALG KID ISS SUB AUD COUNT OUT: COUNT signed assertions, one a line, each with its
# own jti, valid 15 minutes.
bench_mint() {
  target/release/tollgate assertion --key "$1" --alg "$2" --kid "$3" --iss "$4" --sub "$5" \
    --aud "$6" --lifetime 900 --count "$7" > "$8"
}

# One string field of a JSON answer on stdin (as the README's `field`).
bench_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# bench_admin URL PATH JSON: a POST to Tollgate's admin API as the super admin; prints the answer.
bench_admin() {
  curl -sSf -u "admin:$BENCH_ADMIN_PASSWORD" -H 'content-type: application/json' -d "$3" "$1$2"
}

# bench_register URL JSON: registers a client; prints "client_id client_secret" (the secret is
# empty for private_key_jwt clients).
bench_register() {
  local answer
  answer="$(bench_admin "$1" /api/identity/oauth2/dcr/v1.1/register "$2")"
  printf '%s %s\n' "$(bench_field client_id <<< "$answer")" "$(bench_field client_secret <<< "$answer")"
}

# bench_register_idp URL NAME JWKS_URI: an identity provider (alias: the token endpoint URL).
bench_register_idp() {
  bench_admin "$1" /api/server/v1/identity-providers \
    "{\"name\":\"$2\",\"certificate\":{\"jwksUri\":\"$3\"}}" > /dev/null
}

bench_basic() { printf '%s:%s' "$1" "$2" | base64 -w0; }

# The resident set size of PID in MiB (empty when it is gone).
bench_rss_mib() {
  awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || true
}

# bench_cpu_ticks PID...: the user and system CPU time the processes have used, in clock ticks.
bench_cpu_ticks() {
  local p t=0
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# bench_metric METRICS_URL NAME: the sum of the samples of NAME at METRICS_URL (0 when absent).
bench_metric() {
  curl -sf "$1" | awk -v name="$2" '$1 == name || index($1, name "{") == 1 {s += $2}
    END {printf "%d", s}'
}

# bench_result FILE KEY: one value of the RESULT line that once.lua printed into FILE.
bench_result() {
  sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$1" | head -1
}

# bench_issue URL LINES_FILE CAPTURE OUT [CONNECTIONS]: sends each line once with issue.lua
# (env BODY_PREFIX, CONTENT_TYPE, AUTH and FILLER_PATH as it documents) and waits for the
# answers; OUT gets the CAPTURE field of each. Fails on any error answer, or when more than 1 %
# of the lines got none (a request lost to a broken connection is tolerated, and said).
bench_issue() {
  local url="$1" lines="$2" capture="$3" out="$4" connections="${5:-8}" pid n now last=-1 still=0
  n="$(wc -l < "$lines")"
  rm -f "$out" "$out".*
  BENCH_LINES="$lines" CAPTURE="$capture" CAPTURE_OUT="$out" \
    wrk -t1 -c"$connections" -d3600s -s bench/issue.lua "$url" > "$out.wrk" 2>&1 &
  pid=$!
  # Until every line had its answer, or nothing came in for 5 s after the last was sent (60 s
  # before: a slow start is not a failure).
  while [ ! -e "$out.done" ]; do
    sleep 0.2
    if ! kill -0 "$pid" 2>/dev/null; then cat "$out.wrk" >&2; echo "wrk stopped early" >&2; exit 1; fi
    # wrk's script makes these files when it starts, which on a busy machine can take longer
    # than this loop's first turns; under pipefail, cat's failure on a missing one would end
    # the whole script without a word.
    now="$(cat "$out" "$out.failed" 2>/dev/null | wc -l || true)"
    if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; last="$now"; fi
    if [ -e "$out.sent" ] && [ "$still" -gt 25 ]; then break; fi
    if [ "$still" -gt 300 ]; then break; fi
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local got failed
  got="$(wc -l < "$out")"
  failed="$(wc -l < "$out.failed")"
  if [ "$failed" -gt 0 ] || [ $(( got * 100 )) -lt $(( n * 99 )) ]; then
    head -3 "$out.failed" >&2
    echo "issuing $capture at $url: $got of $n answered with it, $failed errors" >&2
    exit 1
  fi
  [ "$got" -eq "$n" ] || echo "  ($capture: $got of $n; $((n - got)) requests got no answer)"
}
