#!/usr/bin/env bash
# One scenario over loopback, for profiling and for several hosts: builds release, starts
# Tollgate on SQLite with TLS off, registers a client, and drives the scenario with wrk
# (installed from Debian's packages if missing). Prints req/s, p50, p99 and the error count,
# and the server's RSS. bench/run.sh runs every scenario (and the side-by-side peer); both use
# bench/lib.sh.
#   ./bench/load.sh                      # client_credentials + client_secret_basic, opaque tokens
#   ./bench/load.sh jwt_bearer           # JWT bearer grant, RS256 assertions (unique jti each)
#                                        # from an IdP whose JWKS `tollgate jwks --serve` publishes
#   ./bench/load.sh private_key_jwt      # client_credentials, the client authenticated by RS256
#                                        # client assertions (unique jti each), JWKS as above
#   ALG=ES256 ./bench/load.sh jwt_bearer # the assertions signed with ES256 or EdDSA instead (a
#                                        # key made for the run), for either assertion scenario
#   DURATION=10s CONNECTIONS=64 ./bench/load.sh
#   ASSERTIONS_COUNT=200000 ./bench/load.sh jwt_bearer   # assertions minted beforehand
#   PERF=1 ./bench/load.sh jwt_bearer    # also samples the server with perf and prints its top
#                                        # (PERF_CALLGRAPH=dwarf: call chains through SQLite)
#                                        # (PERF_SORT=dso for the split by library)
#   STRACE=1 ./bench/load.sh jwt_bearer  # counts the server's system calls instead
#   ALLOCS=1 ./bench/load.sh jwt_bearer  # counts the server's heap allocations per request instead
#                                        # (uprobes: the run is ~20x slower, counts vary ~2 % run to run)
#   INSTRUCTIONS=1 ./bench/load.sh jwt_bearer  # counts the instructions the server executes per
#                                        # request instead (callgrind: ~50x slower, 1-3 % run to run)
#   INPROC=1 ./bench/load.sh jwt_bearer  # the bundled plugins compiled into the server (bench/inproc)
#                                        # instead of loaded: compare with the same run without it
#                                        # for what the plugin ABI costs them
#   DATABASE=sqlite::memory: ./bench/load.sh   # another single-host database URL (what the
#                                        # file's writes cost: compare with the default)
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test HOSTS=2 ./bench/load.sh jwt_bearer
#                                        # HOSTS servers on one PostgreSQL database (made for the
#                                        # run on that server, dropped after), one wrk per host
#                                        # with CONNECTIONS/HOSTS connections; figures summed
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SCENARIO="${1:-client_credentials}"
case "$SCENARIO" in client_credentials|jwt_bearer|private_key_jwt) ;; *) echo "unknown scenario $SCENARIO" >&2; exit 2;; esac
ALG="${ALG:-RS256}"
case "$ALG" in RS256|ES256|EdDSA) ;; *) echo "ALG must be RS256, ES256 or EdDSA, not $ALG" >&2; exit 2;; esac
DURATION="${DURATION:-$([ "$SCENARIO" = client_credentials ] && echo 25s || echo 10s)}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
export THREADS

bench_need_wrk
bench_build

HOSTS="${HOSTS:-1}"
bench_init
work="$BENCH_WORK"
if [ -n "${POSTGRES_URL:-}" ]; then
  BENCH_DB="tollgate_bench_$$"
  psql -q "$POSTGRES_URL" -c "CREATE DATABASE $BENCH_DB"
  database="${POSTGRES_URL%/*}/$BENCH_DB"
  backend=PostgreSQL
elif [ "$HOSTS" -gt 1 ]; then
  echo "HOSTS > 1 needs POSTGRES_URL (several hosts share one PostgreSQL database)" >&2; exit 2
else
  database="${DATABASE:-sqlite://data/tollgate.db}"
  backend=SQLite
fi
if [ "$SCENARIO" != client_credentials ]; then
  bench_dropins
  cp conf/identity.xml "$work/identity.xml"
else
  echo '<Server/>' > "$work/identity.xml"
fi
# Every host has its own conf and data dir; they share the dropins and the server secret.
head -c 32 /dev/urandom > "$work/server-secret"
urls=()
pids=()
for h in $(seq "$HOSTS"); do
  bench_start_tollgate "$work/host-$h" "$database" "$work/identity.xml" "$work/server-secret"
  urls+=("$TOLLGATE_URL")
  pids+=("$TOLLGATE_PID")
done
pid="${pids[0]}"
url="${urls[0]}"

# The requests wrk made over the run, on every host.
answered() { cat "$work"/wrk* | awk '/ requests in / {s += $1} END {print s + 0}'; }

# With PERF=1: samples the server for 5 s from 2 s into the run; `report` prints the top.
# With STRACE=1: counts the server's system calls for 5 s instead.
# With ALLOCS=1: counts the server's calls of its allocators over the whole run instead: mimalloc
# as the server's Rust code calls it, mimalloc as `malloc` (the plugins, whose Rust code allocates
# with the system allocator, and the C code they carry: the binary's malloc is mimalloc's) and
# libc's malloc (SQLite's, host/src/store/sqlite_malloc.rs), through uprobes made for the run and
# deleted after it.
alloc_probes=(tollgate_alloc:mi_malloc=mi_malloc_aligned tollgate_alloc:mi_zalloc=mi_zalloc_aligned
  tollgate_alloc:mi_realloc=mi_realloc_aligned tollgate_alloc:c_malloc=malloc tollgate_alloc:c_calloc=calloc
  tollgate_alloc:c_realloc=realloc)
libc_probes=(tollgate_alloc:malloc=malloc tollgate_alloc:calloc=calloc tollgate_alloc:realloc=realloc)
# With INSTRUCTIONS=1 (servers started under callgrind): counts the instructions the servers'
# user-space code executes over the run instead.
profile() {
  if [ -n "${INSTRUCTIONS:-}" ]; then
    for p in "${pids[@]}"; do callgrind_control -i on "$p" >/dev/null 2>&1; done
    return 0
  fi
  if [ -n "${ALLOCS:-}" ]; then
    local libc probe
    libc="$(awk '$NF ~ /libc\.so/ {print $NF; exit}' "/proc/$pid/maps")"
    perf probe -q -d 'tollgate_alloc:*' 2>/dev/null || true # left by an interrupted run
    for probe in "${alloc_probes[@]}"; do perf probe -q -x "$PWD/target/release/tollgate${INPROC:+-inproc}" -a "$probe"; done
    for probe in "${libc_probes[@]}"; do perf probe -q -x "$libc" -a "$probe"; done
    perf stat -x, -e 'tollgate_alloc:*' -p "$(IFS=,; echo "${pids[*]}")" -o "$work/allocs" &
    perf_pid=$!
    return 0
  fi
  if [ -n "${STRACE:-}" ]; then
    (sleep 2; timeout 5 strace -c -f -p "$pid" -o "$work/strace" >/dev/null 2>&1) &
    perf_pid=$!
    return 0
  fi
  [ -n "${PERF:-}" ] || return 0
  (sleep 2; perf record -F 499 --call-graph "${PERF_CALLGRAPH:-fp}" -p "$pid" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1) &
  perf_pid=$!
}
report() {
  if [ -n "${INSTRUCTIONS:-}" ]; then
    local requests total=0 p
    requests="$(answered)"
    for p in "${pids[@]}"; do callgrind_control -d "$p" >/dev/null 2>&1; done
    for p in "$work"/host-*/callgrind.out.*; do
      total=$((total + $(sed -n 's/^summary: \([0-9]*\).*/\1/p;s/^totals: \([0-9]*\).*/\1/p' "$p" | head -1)))
    done
    awk -v t="$total" -v n="$requests" 'BEGIN {if (n > 0) printf "instructions per request: %.0f (callgrind, %d requests)\n", t / n, n}'
    return 0
  fi
  if [ -n "${ALLOCS:-}" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf probe -q -d 'tollgate_alloc:*'
    local requests
    requests="$(answered)"
    awk -F, -v n="$requests" '$3 ~ /^tollgate_alloc:/ {sub("tollgate_alloc:", "", $3); c[$3] = $1}
      END {mi = c["mi_malloc"] + c["mi_zalloc"] + c["mi_realloc"]; cm = c["c_malloc"] + c["c_calloc"] + c["c_realloc"]
        libc = c["malloc"] + c["calloc"] + c["realloc"]
        printf "allocations per request: %.1f (server %.1f, of them reallocations %.1f; plugins, through malloc, %.1f, of them reallocations %.1f; SQLite %.1f)\n",
          (mi + cm + libc) / n, mi / n, c["mi_realloc"] / n, cm / n, c["c_realloc"] / n, libc / n}' "$work/allocs"
    return 0
  fi
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
  [ -z "${BENCH_LINES:-}" ] || split -n "l/$HOSTS" -d -a 2 "$BENCH_LINES" "$work/slice."
  local i runs=()
  for i in $(seq 0 $((HOSTS - 1))); do
    BENCH_LINES="$work/slice.$(printf %02d "$i")" wrk -t"$THREADS" -c$((CONNECTIONS / HOSTS)) \
      -d"$DURATION" --latency -s "$script" "${urls[$i]}/oauth2/token" > "$work/wrk.$i" &
    runs+=($!)
  done
  wait "${runs[@]}"
  for i in $(seq 0 $((HOSTS - 1))); do echo "host $((i + 1)): $(grep RESULT "$work/wrk.$i")"; done
  cat "$work"/wrk.* | awk -F'[ =]' -v hosts="$HOSTS" '/^RESULT/ {rps += $3; if ($7 > p99) p99 = $7; errors += $9}
    END {printf "RESULT hosts=%d req_per_s=%.0f p99_ms(max)=%.2f errors=%d\n", hosts, rps, p99, errors}'
}

# The servers' CPU time per answered request over the run: steadier than req/s on a noisy
# machine, for comparing two builds (wrk's own CPU is not in it). Then the whole machine's:
# the CPU time every process and the kernel spent per request (wrk, the kernel's writeback
# and interrupts included), and the share of the CPUs left idle, which a closed loop of
# CONNECTIONS requests leaves when every request is waiting (for a commit, for wrk). Last, the
# bytes the servers sent to storage per request (/proc/PID/io write_bytes: the WAL, checkpoints).
cpu_start() {
  cpu_ticks="$(bench_cpu_ticks "${pids[@]}")"
  written_start="$(written)"
  read -r busy_start idle_start < <(machine_ticks)
}
# machine_ticks: the busy and the idle clock ticks of every CPU since boot (steal counts as
# neither: it is another guest's).
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
written() {
  local p w=0
  for p in "${pids[@]}"; do w=$((w + $(awk '$1 == "write_bytes:" {print $2}' "/proc/$p/io"))); done
  echo "$w"
}
cpu_report() {
  local ticks requests busy idle
  ticks=$(($(bench_cpu_ticks "${pids[@]}") - cpu_ticks))
  requests="$(answered)"
  read -r busy idle < <(machine_ticks)
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    -v busy=$((busy - busy_start)) -v idle=$((idle - idle_start)) -v w=$(($(written) - written_start)) \
    'BEGIN {if (n > 0) printf "server CPU: %.1f us per request; machine CPU: %.1f us per request, %.0f %% idle; %.1f KiB written per request\n",
      t / hz * 1e6 / n, busy / hz * 1e6 / n, 100 * idle / (busy + idle), w / 1024 / n}'
}

# The store's group commits over the run, from each host's /metrics: how many, how many writes
# each carried, and how long each took, on average.
commits() {
  local u
  for u in "${urls[@]}"; do
    curl -sf "$u/metrics" | awk '{v[$1] = $2}
      END {n = v["tollgate_store_commit_calls_count"]; if (n > 0)
        printf "group commits: %d, %.1f writes and %.0f us each on average, %d failed\n", n,
          v["tollgate_store_commit_calls_sum"] / n, v["tollgate_store_commit_seconds_sum"] / n * 1e6,
          v["tollgate_store_commit_failures_total"]}'
  done
}

rss() {
  local p
  for p in "${pids[@]}"; do
    echo "server RSS: $(bench_rss_mib "$p") MiB"
  done
}

if [ "$SCENARIO" = client_credentials ]; then
  read -r id secret < <(bench_register "$url" '{"client_name":"bench","grant_types":["client_credentials"]}')
  CLIENT_BASIC="$(bench_basic "$id" "$secret")"
  export CLIENT_BASIC
  echo "client_credentials + client_secret_basic, opaque tokens, $backend, $HOSTS host(s), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  profile
  cpu_start
  drive bench/client_credentials.lua
  cpu_report
  report
  commits
  rss
  exit 0
fi

# The assertion scenarios: the JWKS of the signing key (kid "bench") served over loopback HTTP;
# the RSA test key for RS256, a key made for the run for ES256 and EdDSA.
case "$ALG" in
  RS256) key=tests/fixtures/keys/rsa-2048.pem ;;
  ES256) bench_keygen "$work/keys"; key="$work/keys/ec-a.pem" ;;
  EdDSA) bench_keygen "$work/keys"; key="$work/keys/ed25519.pem" ;;
esac
bench_jwks_serve "$key" "$ALG" bench
jwks_uri="$JWKS_URI"
if [ "$SCENARIO" = jwt_bearer ]; then
  read -r id secret < <(bench_register "$url" '{"client_name":"bench","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}')
  CLIENT_BASIC="$(bench_basic "$id" "$secret")"
  bench_register_idp "$url" https://bench-idp.example "$jwks_uri"
  iss=https://bench-idp.example sub=alice
  BODY_PREFIX="$JWT_BEARER_FORM"
  what="jwt-bearer ($ALG, unique jti, cached JWKS) + client_secret_basic"
else
  read -r id _ < <(bench_register "$url" "{\"client_name\":\"bench\",\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":\"private_key_jwt\",\"jwks_uri\":\"$jwks_uri\"}")
  CLIENT_BASIC=""
  iss="$id" sub="$id"
  BODY_PREFIX="$PRIVATE_KEY_JWT_FORM"
  what="client_credentials + private_key_jwt ($ALG, unique jti, cached JWKS)"
fi
export CLIENT_BASIC BODY_PREFIX
count="${ASSERTIONS_COUNT:-150000}"
echo "minting $count $ALG assertions…"
bench_mint "$key" "$ALG" bench "$iss" "$sub" "$BENCH_TOLLGATE_AUD" "$count" "$work/assertions"
export BENCH_LINES="$work/assertions"
echo "$what, opaque tokens, $backend, $HOSTS host(s), wrk -t$THREADS -c$CONNECTIONS -d$DURATION${INPROC:+, plugins linked in}"
profile
cpu_start
drive bench/once.lua
cpu_report
report
for u in "${urls[@]}"; do
  echo "JWKS fetches ($u): $(bench_metric "$u/metrics" tollgate_jwks_fetches_total)"
done
commits
rss
