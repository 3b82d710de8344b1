#!/usr/bin/env bash
# Tollgate's load benchmark in one command: builds release, starts Tollgate over plain HTTP on
# loopback (SQLite, the shipped conf/identity.xml with the three bundled plugins), registers the
# clients and identity providers over the admin API, pre-mints the signed assertions (a unique
# jti each) and pre-issues the tokens, then drives each scenario with wrk (installed from
# Debian's packages if missing). Prints a table — req/s, p50, p99, errors (must be 0), the
# server's RSS, JWKS fetches — and writes it as JSON to bench/results/DATE-GITHASH.json.
#
#   ./bench/run.sh                                  # every scenario, 25 s each, 32 connections
#   DURATION=3s ./bench/run.sh                      # a quick check of the harness
#   SCENARIOS="cc_basic jwt_bearer_es256" ./bench/run.sh
#   PEER=1 ./bench/run.sh                           # the same against node-oidc-provider, side by side
#   PEER=1 ROUNDS=3 ./bench/run.sh                  # each figure the median of 3 runs (the issue's method)
#   SCALE=10000 ./bench/run.sh                      # with 10,000 more clients and 10,000 more IdPs
#
# Settings (environment):
#   DURATION     wrk -d per scenario (default 25s; "10s", "1m")
#   CONNECTIONS  wrk -c (default 32); THREADS: wrk -t (default 1)
#   ROUNDS=N     run each scenario N times (Tollgate and peer taking turns) and report the median
#                of each figure; errors, replays and JWKS fetches are summed (default 1;
#                tokens_1m runs once)
#   SCENARIOS    a subset of the scenarios below, space- or comma-separated (default all)
#   PEER=1       also run each scenario against node-oidc-provider 9.x (bench/peer/server.mjs,
#                installed with npm into bench/peer/node_modules on first use)
#   SCALE=N      register N extra clients and N extra identity providers (through the admin API,
#                concurrently) before the scenarios run; the peer gets as many, statically
#   ASSERTIONS_PER_SECOND  assertions minted per second of DURATION per scenario (default 20000);
#                a run that uses them all up is flagged (`reused`): raise it
#   REFRESH_PER_SECOND     refresh tokens pre-issued per second of DURATION (default 24000);
#                a run that uses them all up shows errors (each reused one is refused): raise it
#   INTROSPECT_TOKENS      access tokens pre-issued for introspection (default 500)
#   TOKENS       tokens issued by tokens_1m (default 1000000)
#
# Scenarios (all against the token endpoint unless said otherwise):
#   cc_basic          client_credentials, client_secret_basic
#   pkjwt_rs256       client_credentials, private_key_jwt with RS256 client assertions
#   pkjwt_es256       client_credentials, private_key_jwt with ES256 client assertions
#   jwt_bearer_rs256  JWT bearer grant (RFC 7523), RS256 assertions, client_secret_basic
#   jwt_bearer_es256  the same, ES256
#   jwt_bearer_eddsa  the same, EdDSA (Ed25519)
#   refresh_token     refresh_token grant: each pre-issued refresh token redeemed once (rotation)
#   introspection     /oauth2/introspect of pre-issued access tokens, client_secret_basic
#   tokens_1m         cc_basic until TOKENS (1,000,000) more tokens are stored, for the server's
#                     RSS after them (its row's RSS column; 2–3 minutes here); Tollgate only
# Every client and IdP key set is a JWKS URI served by `tollgate jwks --serve` on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The performance goals (issue 9). The targets were set on a machine where the peer
# (node-oidc-provider 9.13 on node 20, wrk -t1 -c32 25 s, median of 3) did the second figure of
# each pair; the first over the second is the ratio to reach against the peer measured here, in
# the same run. And p99 under GOAL_P99_MS at 32 connections, for every scenario.
declare -A GOAL_RATIO=(
  [cc_basic]="40000 10400" [pkjwt_rs256]="25000 6500" [pkjwt_es256]="15000 6400"
  [jwt_bearer_rs256]="25000 7150"
)
GOAL_P99_MS=5

ALL_SCENARIOS="cc_basic pkjwt_rs256 pkjwt_es256 jwt_bearer_rs256 jwt_bearer_es256 jwt_bearer_eddsa refresh_token introspection tokens_1m"
SCENARIOS="$(echo "${SCENARIOS:-$ALL_SCENARIOS}" | tr ',' ' ' | xargs)"
DURATION="${DURATION:-25s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-1}"
PEER="${PEER:-}"
[ "$PEER" != 0 ] || PEER=""
SCALE="${SCALE:-0}"
ASSERTIONS_PER_SECOND="${ASSERTIONS_PER_SECOND:-20000}"
REFRESH_PER_SECOND="${REFRESH_PER_SECOND:-24000}"
INTROSPECT_TOKENS="${INTROSPECT_TOKENS:-500}"
TOKENS="${TOKENS:-1000000}"
export THREADS

for s in $SCENARIOS; do
  case " $ALL_SCENARIOS " in *" $s "*) ;; *) echo "unknown scenario $s (known: $ALL_SCENARIOS)" >&2; exit 2;; esac
done
case "$DURATION" in
  *[0-9]s) seconds="${DURATION%s}" ;;
  *[0-9]m) seconds=$(( ${DURATION%m} * 60 )) ;;
  *[0-9]) seconds="$DURATION" ;;
  *) echo "DURATION must be like 25s or 1m" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "DURATION must be like 25s or 1m" >&2; exit 2; }
[[ "$SCALE" =~ ^[0-9]+$ ]] || { echo "SCALE must be a number" >&2; exit 2; }
[[ "$TOKENS" =~ ^[1-9][0-9]*$ ]] || { echo "TOKENS must be a positive number" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number" >&2; exit 2; }
wants() { case " $SCENARIOS " in *" $1 "*) return 0;; *) return 1;; esac; }
assertions=$(( ASSERTIONS_PER_SECOND * seconds < 2000 ? 2000 : ASSERTIONS_PER_SECOND * seconds ))
refresh_tokens=$(( REFRESH_PER_SECOND * seconds < 1000 ? 1000 : REFRESH_PER_SECOND * seconds ))

bench_need_wrk
if [ -n "$PEER" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "PEER=1 needs node (20 or later) and npm" >&2; exit 2
  fi
  [ -d bench/peer/node_modules/oidc-provider ] \
    || (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
fi
bench_build
bench_init
work="$BENCH_WORK"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- Tollgate, its keys and the JWKS servers -------------------------------------------------
bench_dropins
bench_start_tollgate "$work/tollgate" "sqlite://data/tollgate.db" conf/identity.xml
TG="$TOLLGATE_URL"
TG_PID="$TOLLGATE_PID"
bench_keygen "$work/keys"
RSA_IDP=tests/fixtures/keys/rsa-2048.pem
RSA_CLIENT=tests/fixtures/keys/rsa-2048-b.pem
EC_IDP="$work/keys/ec-a.pem"
EC_CLIENT="$work/keys/ec-b.pem"
ED_IDP="$work/keys/ed25519.pem"

# name → "key alg kid" and, once served, its JWKS URI. Only the sets a chosen scenario uses.
declare -A KEY JWKS
KEY[idp-rs256]="$RSA_IDP RS256 idp-rs256"
KEY[idp-es256]="$EC_IDP ES256 idp-es256"
KEY[idp-eddsa]="$ED_IDP EdDSA idp-eddsa"
KEY[client-rs256]="$RSA_CLIENT RS256 client-rs256"
KEY[client-es256]="$EC_CLIENT ES256 client-es256"
needed_sets=()
wants pkjwt_rs256 && needed_sets+=(client-rs256)
wants pkjwt_es256 && needed_sets+=(client-es256)
wants jwt_bearer_rs256 && needed_sets+=(idp-rs256)
wants jwt_bearer_es256 && needed_sets+=(idp-es256)
{ wants jwt_bearer_eddsa || wants refresh_token; } && needed_sets+=(idp-eddsa)
for set in "${needed_sets[@]}"; do
  read -r key alg kid <<< "${KEY[$set]}"
  bench_jwks_serve "$key" "$alg" "$kid"
  JWKS[$set]="$JWKS_URI"
done
idp_name() { echo "https://${1}.bench.example"; }   # idp-rs256 → https://idp-rs256.bench.example

# The clients (client_id chosen, the same on both servers) and the IdPs.
JB_GRANTS='["urn:ietf:params:oauth:grant-type:jwt-bearer","refresh_token"]'
read -r _ TG_CC_SECRET < <(bench_register "$TG" '{"client_name":"bench-cc","ext_param_client_id":"bench-cc","grant_types":["client_credentials"]}')
read -r _ TG_JB_SECRET < <(bench_register "$TG" "{\"client_name\":\"bench-jb\",\"ext_param_client_id\":\"bench-jb\",\"grant_types\":$JB_GRANTS}")
for set in "${needed_sets[@]}"; do
  case "$set" in
    client-*)
      bench_register "$TG" "{\"client_name\":\"bench-pkjwt-${set#client-}\",\"ext_param_client_id\":\"bench-pkjwt-${set#client-}\",\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":\"private_key_jwt\",\"jwks_uri\":\"${JWKS[$set]}\"}" > /dev/null ;;
    idp-*) bench_register_idp "$TG" "$(idp_name "$set")" "${JWKS[$set]}" ;;
  esac
done

# SCALE: N more clients and N more IdPs, registered concurrently through the admin API (each
# request checks the super admin's password with argon2, which is what bounds the rate). The
# IdPs' JWKS URIs are distinct and never fetched: no assertion names them.
scale_seconds=0
if [ "$SCALE" -gt 0 ]; then
  echo "registering $SCALE clients and $SCALE identity providers through the admin API…"
  scale_start=$(date +%s)
  seq "$SCALE" | awk '{printf "{\"client_name\":\"scale-%d\",\"ext_param_client_id\":\"scale-client-%d\",\"grant_types\":[\"client_credentials\"]}\n", $1, $1}' > "$work/scale-clients"
  seq "$SCALE" | awk '{printf "{\"name\":\"https://scale-idp-%d.bench.example\",\"certificate\":{\"jwksUri\":\"http://127.0.0.1:9/scale-%d/jwks\"}}\n", $1, $1}' > "$work/scale-idps"
  admin_auth="Basic $(bench_basic admin "$BENCH_ADMIN_PASSWORD")"
  BODY_PREFIX="" CONTENT_TYPE=application/json AUTH="$admin_auth" FILLER_PATH=/health \
    bench_issue "$TG/api/identity/oauth2/dcr/v1.1/register" "$work/scale-clients" client_id "$work/scale-clients.ids" 16
  BODY_PREFIX="" CONTENT_TYPE=application/json AUTH="$admin_auth" FILLER_PATH=/health \
    bench_issue "$TG/api/server/v1/identity-providers" "$work/scale-idps" id "$work/scale-idps.ids" 16
  scale_seconds=$(( $(date +%s) - scale_start ))
  echo "registered $((2 * SCALE)) in ${scale_seconds}s"
fi
TG_RSS_IDLE="$(bench_rss_mib "$TG_PID")"

# --- The peer: node-oidc-provider, configured statically like the above ---------------------
PEER_URL="" PEER_PID="" PEER_RSS_IDLE=""
if [ -n "$PEER" ]; then
  PEER_CC_SECRET="$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  PEER_JB_SECRET="$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  client() {  # client_id grant_types_json method extra_json
    printf '{"client_id":"%s","grant_types":%s,"redirect_uris":[],"response_types":[],"token_endpoint_auth_method":"%s"%s}' "$@"
  }
  {
    printf '{"clients":[\n'
    client bench-cc '["client_credentials"]' client_secret_basic ",\"client_secret\":\"$PEER_CC_SECRET\""
    printf ',\n'
    client bench-jb '["urn:ietf:params:oauth:grant-type:jwt-bearer","refresh_token"]' client_secret_basic ",\"client_secret\":\"$PEER_JB_SECRET\""
    for set in "${needed_sets[@]}"; do
      case "$set" in client-*)
        printf ',\n'
        client "bench-pkjwt-${set#client-}" '["client_credentials"]' private_key_jwt ",\"jwks_uri\":\"${JWKS[$set]}\"" ;;
      esac
    done
    [ "$SCALE" -eq 0 ] || seq "$SCALE" | awk '{printf ",\n{\"client_id\":\"scale-client-%d\",\"client_secret\":\"scale-secret-%d-%s\",\"grant_types\":[\"client_credentials\"],\"redirect_uris\":[],\"response_types\":[],\"token_endpoint_auth_method\":\"client_secret_basic\"}", $1, $1, rand()}'
    printf '\n],\n"idps":[\n'
    sep=""
    for set in "${needed_sets[@]}"; do
      case "$set" in idp-*)
        printf '%s{"iss":"%s","jwks_uri":"%s"}' "$sep" "$(idp_name "$set")" "${JWKS[$set]}"; sep=$',\n' ;;
      esac
    done
    [ "$SCALE" -eq 0 ] || seq "$SCALE" | awk -v sep="$sep" '{printf "%s{\"iss\":\"https://scale-idp-%d.bench.example\",\"jwks_uri\":\"http://127.0.0.1:9/scale-%d/jwks\"}", (NR == 1 ? sep : ",\n"), $1, $1}'
    printf '\n]}\n'
  } > "$work/peer.json"
  PEER_CONFIG="$work/peer.json" node bench/peer/server.mjs > "$work/peer.out" 2> "$work/peer.err" &
  PEER_PID=$!
  BENCH_PIDS+=("$PEER_PID")
  for _ in $(seq 100); do grep -q "listening on" "$work/peer.out" && break; sleep 0.1; done
  PEER_URL="$(sed -n 's/^peer listening on //p' "$work/peer.out")"
  [ -n "$PEER_URL" ] || { cat "$work/peer.err" >&2; echo "the peer did not start" >&2; exit 1; }
  PEER_RSS_IDLE="$(bench_rss_mib "$PEER_PID")"
fi

# --- The scenarios ---------------------------------------------------------------------------
# target_ctx tollgate|peer: the URLs, audience and secrets of that server.
target_ctx() {
  if [ "$1" = tollgate ]; then
    token_url="$TG/oauth2/token" introspect_url="$TG/oauth2/introspect"
    aud="$BENCH_TOLLGATE_AUD" filler=/health pid="$TG_PID"
    metrics="$TG/metrics" fetch_metric=tollgate_jwks_fetches_total
    cc_basic="$(bench_basic bench-cc "$TG_CC_SECRET")" jb_basic="$(bench_basic bench-jb "$TG_JB_SECRET")"
  else
    token_url="$PEER_URL/token" introspect_url="$PEER_URL/token/introspection"
    aud="$PEER_URL/token" filler=/.well-known/openid-configuration pid="$PEER_PID"
    metrics="$PEER_URL/bench-metrics" fetch_metric=peer_jwks_fetches_total
    cc_basic="$(bench_basic bench-cc "$PEER_CC_SECRET")" jb_basic="$(bench_basic bench-jb "$PEER_JB_SECRET")"
  fi
}

supported() {  # target scenario
  [ "$1" = tollgate ] || { [ "$2" != refresh_token ] && [ "$2" != tokens_1m ]; }
}

declare -A RPS P50 P99 ERR REUSED RSS FETCHES REQUESTS
mint_for() {  # set iss sub → $work/lines
  read -r key alg kid <<< "${KEY[$1]}"
  bench_mint "$key" "$alg" "$kid" "$2" "$3" "$aud" "$assertions" "$work/lines"
}

run_one() {  # target scenario round
  local t="$1" s="$2" r="$3" script=bench/once.lua url prefix="" basic="" cycle="" expect=""
  local duration="$DURATION" stop_after=""
  target_ctx "$t"
  url="$token_url"
  rm -f "$work/lines"
  case "$s" in
    cc_basic) script=bench/client_credentials.lua basic="$cc_basic" ;;
    tokens_1m)  # as cc_basic, until TOKENS more tokens are stored; RSS is what it is about
      script=bench/client_credentials.lua basic="$cc_basic" duration=1h stop_after="$TOKENS" ;;
    pkjwt_rs256|pkjwt_es256)
      local id="bench-pkjwt-${s#pkjwt_}"
      mint_for "client-${s#pkjwt_}" "$id" "$id"
      prefix="$PRIVATE_KEY_JWT_FORM" ;;
    jwt_bearer_*)
      local set="idp-${s#jwt_bearer_}"
      mint_for "$set" "$(idp_name "$set")" alice
      prefix="$JWT_BEARER_FORM" basic="$jb_basic" ;;
    refresh_token)
      read -r key alg kid <<< "${KEY[idp-eddsa]}"
      bench_mint "$key" "$alg" "$kid" "$(idp_name idp-eddsa)" alice "$aud" "$refresh_tokens" "$work/grants"
      BODY_PREFIX="$JWT_BEARER_FORM" AUTH="Basic $jb_basic" FILLER_PATH="$filler" \
        bench_issue "$token_url" "$work/grants" refresh_token "$work/lines" 16
      prefix="grant_type=refresh_token&refresh_token=" basic="$jb_basic" ;;
    introspection)
      seq "$INTROSPECT_TOKENS" | sed "s/.*/client_credentials/" > "$work/grants"
      BODY_PREFIX="grant_type=" AUTH="Basic $cc_basic" FILLER_PATH="$filler" \
        bench_issue "$token_url" "$work/grants" access_token "$work/lines" 16
      url="$introspect_url" prefix="token=" basic="$cc_basic" cycle=1 expect='"active":true' ;;
  esac
  local before after out="$work/wrk.$t.$s"
  before="$(bench_metric "$metrics" "$fetch_metric")"
  local length="-d$duration"
  [ -z "$stop_after" ] || length="until $stop_after responses"
  echo "== $t: $s (wrk -t$THREADS -c$CONNECTIONS $length)$([ "$ROUNDS" -eq 1 ] || echo ", round $r")"
  BENCH_LINES="$work/lines" BODY_PREFIX="$prefix" CLIENT_BASIC="$basic" CYCLE="$cycle" EXPECT="$expect" \
    STOP_AFTER="$stop_after" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency -s "$script" "$url" > "$out" 2>&1 || true
  grep '^RESULT' "$out" || { cat "$out"; echo "wrk failed" >&2; }
  after="$(bench_metric "$metrics" "$fetch_metric")"
  local k="$t/$s/$r" v
  RPS[$k]="$(bench_result "$out" req_per_s)"; P50[$k]="$(bench_result "$out" p50_ms)"
  P99[$k]="$(bench_result "$out" p99_ms)"; ERR[$k]="$(bench_result "$out" errors)"
  v="$(bench_result "$out" reused)"; REUSED[$k]="${v:-0}"
  v="$(bench_result "$out" requests)"; REQUESTS[$k]="${v:-0}"
  [ -n "${ERR[$k]}" ] || ERR[$k]="wrk failed"
  RSS[$k]="$(bench_rss_mib "$pid")"
  FETCHES[$k]=$(( after - before ))
  kill -0 "$pid" 2>/dev/null || { echo "the $t server died" >&2; exit 1; }
}

rounds_of() {  # scenario
  if [ "$1" = tokens_1m ]; then echo 1; else echo "$ROUNDS"; fi
}

median() {  # values…: the middle one (the mean of the two middle ones for an even count)
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0 || v[1] == "") exit
    m = int((NR + 1) / 2)
    if (NR % 2) print v[m]; else printf "%.2f\n", (v[m] + v[m + 1]) / 2 }'
}

# The rounds of target/scenario as one row: medians of the rates and latencies; errors, replays,
# requests and fetches summed; the RSS after the last round.
summarize() {  # target scenario
  local k="$1/$2" n i rps=() p50=() p99=() err=0 reused=0 requests=0 fetches=0
  n="$(rounds_of "$2")"
  for i in $(seq "$n"); do
    local j="$k/$i"
    rps+=("${RPS[$j]}") p50+=("${P50[$j]}") p99+=("${P99[$j]}")
    if [[ "$err" =~ ^[0-9]+$ ]]; then  # a failed round ("wrk failed") stays the row's errors
      if [[ "${ERR[$j]}" =~ ^[0-9]+$ ]]; then err=$(( err + ${ERR[$j]} )); else err="${ERR[$j]}"; fi
    fi
    reused=$(( reused + ${REUSED[$j]} )) requests=$(( requests + ${REQUESTS[$j]} ))
    fetches=$(( fetches + ${FETCHES[$j]} ))
  done
  RPS[$k]="$(median "${rps[@]}")" P50[$k]="$(median "${p50[@]}")" P99[$k]="$(median "${p99[@]}")"
  [ "$n" -eq 1 ] || RPS[$k]="$(printf '%.0f' "${RPS[$k]}")"
  ERR[$k]="$err" REUSED[$k]="$reused" REQUESTS[$k]="$requests" FETCHES[$k]="$fetches"
  RSS[$k]="${RSS[$k/$n]}"
}

for s in $SCENARIOS; do
  for r in $(seq "$(rounds_of "$s")"); do
    run_one tollgate "$s" "$r"
    if [ -n "$PEER" ]; then
      if supported peer "$s"; then run_one peer "$s" "$r"; else echo "== peer: $s n/a"; fi
    fi
  done
  summarize tollgate "$s"
  if [ -n "$PEER" ] && supported peer "$s"; then summarize peer "$s"; fi
done

# --- The report --------------------------------------------------------------------------------
tg_fetches="$(bench_metric "$TG/metrics" tollgate_jwks_fetches_total)"
peer_fetches=""
[ -z "$PEER" ] || peer_fetches="$(bench_metric "$PEER_URL/bench-metrics" peer_jwks_fetches_total)"
tg_uris="${#needed_sets[@]}"
finished_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
elapsed=$(( $(date -d "$finished_at" +%s) - $(date -d "$started_at" +%s) ))
failed=0
row_ok() { [ "${ERR[$1]:-x}" = 0 ] && [ "${REUSED[$1]:-0}" = 0 ]; }

echo
echo "Tollgate (SQLite, plain HTTP, loopback) — wrk -t$THREADS -c$CONNECTIONS -d$DURATION per scenario, SCALE=$SCALE$([ "$ROUNDS" -eq 1 ] || echo ", median of $ROUNDS rounds")${INPROC:+, plugins linked in (INPROC=1)}"
if [ -n "$PEER" ]; then
  printf '%-17s | %8s %7s %7s %6s %7s %4s | %8s %7s %7s %6s %7s %4s | %5s\n' \
    scenario "req/s" "p50 ms" "p99 ms" errors "RSS MiB" JWKS "peer r/s" "p50 ms" "p99 ms" errors "RSS MiB" JWKS ratio
else
  printf '%-17s | %8s %7s %7s %6s %7s %4s\n' scenario "req/s" "p50 ms" "p99 ms" errors "RSS MiB" JWKS
fi
for s in $SCENARIOS; do
  k="tollgate/$s"
  row_ok "$k" || failed=1
  line="$(printf '%-17s | %8s %7s %7s %6s %7s %4s' "$s" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${ERR[$k]}" "${RSS[$k]}" "${FETCHES[$k]}")"
  if [ -n "$PEER" ]; then
    p="peer/$s"
    if supported peer "$s"; then
      row_ok "$p" || failed=1
      ratio="$(awk -v a="${RPS[$k]:-0}" -v b="${RPS[$p]:-0}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')"
      line+="$(printf ' | %8s %7s %7s %6s %7s %4s | %5s' "${RPS[$p]}" "${P50[$p]}" "${P99[$p]}" "${ERR[$p]}" "${RSS[$p]}" "${FETCHES[$p]}" "$ratio")"
    else
      line+="$(printf ' | %8s %7s %7s %6s %7s %4s | %5s' n/a n/a n/a n/a n/a n/a n/a)"
    fi
  fi
  echo "$line"
done
echo
echo "Goals: p99 < $GOAL_P99_MS ms$([ -z "$PEER" ] || echo "; Tollgate/peer at least the target over the peer's req/s where the targets were set")"
for s in $SCENARIOS; do
  k="tollgate/$s" p="peer/$s" goal=""
  [ -z "$PEER" ] || ! supported peer "$s" || goal="${GOAL_RATIO[$s]:-}"
  awk -v s="$s" -v p99="${P99[$k]:-}" -v g="$GOAL_P99_MS" -v a="${RPS[$k]:-0}" -v b="${RPS[$p]:-0}" \
    -v goal="$goal" 'BEGIN {
      printf "  %-17s p99 %s ms: %s", s, p99, (p99 !~ /^[0-9.]+$/ ? "-" : (p99 + 0 < g ? "met" : "missed"))
      if (goal != "") {
        split(goal, t, " ")
        r = (b > 0 ? a / b : 0)
        printf "; ratio %.2f, goal %.2f (%d/s over %d/s): %s", r, t[1] / t[2], t[1], t[2], (r >= t[1] / t[2] ? "met" : "missed")
      }
      print ""
    }'
done
echo
echo "RSS before the scenarios: Tollgate ${TG_RSS_IDLE} MiB${PEER:+, peer ${PEER_RSS_IDLE} MiB}"
echo "JWKS fetches (Tollgate, tollgate_jwks_fetches_total): $tg_fetches for $tg_uris JWKS URIs in use" \
  "(JWKS column: fetches during each scenario; each set stays fresh for max-age=300 s, the run took ${elapsed}s)"
if [ "$tg_fetches" -lt "$tg_uris" ] || [ "$tg_fetches" -gt $(( tg_uris * (1 + elapsed / 300) )) ]; then
  echo "  WARNING: expected one fetch per JWKS URI (and per 300 s), not $tg_fetches"; failed=1
fi
[ -z "$PEER" ] || echo "JWKS fetches (peer: jose's remote JWKS set per IdP, oidc-provider's per client): $peer_fetches"
[ "$SCALE" -eq 0 ] || echo "SCALE: $SCALE clients and $SCALE IdPs registered in ${scale_seconds}s through the admin API"
for s in $SCENARIOS; do
  for t in tollgate ${PEER:+peer}; do
    k="$t/$s"
    [ "${REUSED[$k]:-0}" = 0 ] || echo "  $t $s: ran out of pre-minted lines, ${REUSED[$k]} sent again (raise ASSERTIONS_PER_SECOND / REFRESH_PER_SECOND)"
  done
done
notes=(
  "Figures depend on the machine and on what else runs on it (load average at start: $load_at_start, $(nproc) CPUs)."
  "Tollgate keeps used jti, tokens and refresh rotations in SQLite (WAL), on disk; every replay check is a database decision."
)
if [ -n "$PEER" ]; then
  notes+=(
    "Peer: node-oidc-provider $(sed -n 's/.*"version": "\(.*\)".*/\1/p' bench/peer/node_modules/oidc-provider/package.json | head -1), one process, in-memory adapter (nothing persisted), opaque tokens; its jwt-bearer grant is bench/peer/server.mjs (jose, ReplayDetection)."
    "Peer: the in-memory adapter is one LRU of ~1,000 entries shared by tokens, grants and used jti: a used assertion is forgotten after ~1,000 newer entries and its replay is then accepted; Tollgate refuses replays until the assertion expires."
    "Peer: refresh_token is n/a: refresh tokens cannot be pre-issued in bulk into a ~1,000-entry in-memory store (they are evicted before use)."
    "Peer: the jwt-bearer grant issues an access and a refresh token (as Tollgate does); client_credentials issues an access token only (both)."
  )
fi
echo "Notes:"
for n in "${notes[@]}"; do echo "- $n"; done

# --- JSON --------------------------------------------------------------------------------------
mkdir -p bench/results
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=false
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=true
result="bench/results/$(date -u +%Y%m%d-%H%M%S)-$commit.json"
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
json_num() { if [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$1"; else printf 'null'; fi; }
json_row() {  # target scenario
  local k="$1/$2"
  if [ "$1" = peer ] && ! supported peer "$2"; then
    printf '{"supported":false}'
    return
  fi
  printf '{"req_per_s":%s,"p50_ms":%s,"p99_ms":%s,"errors":%s,"reused":%s,"requests":%s,"rss_mib":%s' \
    "$(json_num "${RPS[$k]}")" "$(json_num "${P50[$k]}")" "$(json_num "${P99[$k]}")" \
    "$(json_num "${ERR[$k]}")" "$(json_num "${REUSED[$k]}")" "$(json_num "${REQUESTS[$k]}")" "$(json_num "${RSS[$k]}")"
  printf ',"jwks_fetches":%s' "$(json_num "${FETCHES[$k]}")"
  if [ "$ROUNDS" -gt 1 ]; then
    local i sep='' n
    n="$(rounds_of "$2")"
    printf ',"rounds":['
    for i in $(seq "$n"); do
      printf '%s{"req_per_s":%s,"p50_ms":%s,"p99_ms":%s,"errors":%s}' "$sep" \
        "$(json_num "${RPS[$k/$i]}")" "$(json_num "${P50[$k/$i]}")" "$(json_num "${P99[$k/$i]}")" \
        "$(json_num "${ERR[$k/$i]}")"
      sep=,
    done
    printf ']'
  fi
  printf '}'
}
{
  printf '{\n  "started_at": %s, "finished_at": %s,\n' "$(json_str "$started_at")" "$(json_str "$finished_at")"
  printf '  "git": {"commit": %s, "dirty": %s},\n' "$(json_str "$commit")" "$dirty"
  printf '  "machine": {"cpus": %s, "load_average_at_start": %s, "kernel": %s},\n' \
    "$(nproc)" "$(json_str "$load_at_start")" "$(json_str "$(uname -r)")"
  printf '  "settings": {"duration": %s, "connections": %s, "threads": %s, "rounds": %s, "scale": %s, "peer": %s, "plugins_linked_in": %s, "assertions_per_scenario": %s, "refresh_tokens": %s, "introspect_tokens": %s},\n' \
    "$(json_str "$DURATION")" "$CONNECTIONS" "$THREADS" "$ROUNDS" "$SCALE" "$([ -n "$PEER" ] && echo true || echo false)" "$([ -n "${INPROC:-}" ] && echo true || echo false)" \
    "$assertions" "$refresh_tokens" "$INTROSPECT_TOKENS"
  printf '  "tollgate": {"rss_mib_before": %s, "jwks_fetches_total": %s, "jwks_uris": %s, "scale_registration_seconds": %s},\n' \
    "$(json_num "$TG_RSS_IDLE")" "$tg_fetches" "$tg_uris" "$scale_seconds"
  [ -z "$PEER" ] || printf '  "peer": {"rss_mib_before": %s, "jwks_fetches_total": %s},\n' \
    "$(json_num "$PEER_RSS_IDLE")" "$(json_num "$peer_fetches")"
  printf '  "goals": {"p99_ms": %s, "ratios": {' "$GOAL_P99_MS"
  sep=""
  for s in "${!GOAL_RATIO[@]}"; do
    printf '%s%s: %s' "$sep" "$(json_str "$s")" "$(awk -v g="${GOAL_RATIO[$s]}" 'BEGIN {split(g, t, " "); printf "%.2f", t[1] / t[2]}')"
    sep=", "
  done
  printf '}},\n'
  printf '  "scenarios": [\n'
  sep=""
  for s in $SCENARIOS; do
    printf '%s    {"name": %s, "tollgate": %s' "$sep" "$(json_str "$s")" "$(json_row tollgate "$s")"
    [ -z "$PEER" ] || printf ', "peer": %s' "$(json_row peer "$s")"
    printf '}'
    sep=$',\n'
  done
  printf '\n  ],\n  "notes": ['
  sep=""
  for n in "${notes[@]}"; do printf '%s\n    %s' "$sep" "$(json_str "$n")"; sep=","; done
  printf '\n  ]\n}\n'
} > "$result"
echo "Results: $result"
if [ "$failed" -ne 0 ]; then
  echo "FAILED: some scenario had errors, ran out of pre-minted lines, or JWKS fetches were off" >&2
  exit 1
fi
