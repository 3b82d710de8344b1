#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer + AddressSanitizer) of the parsers that read
# untrusted input: the token endpoint's form and Basic header (token_form), JWT claim reading
# and claim rules (jwt_claims), the bundled JWT validator (jwt_validate), the JWK key policy
# and certificates (jwks_policy), identity.xml (identity_xml) and deployment.toml with
# TOLLGATE_* overrides (deployment_toml). Each target's header comment says what it drives.
#
# NOT run in CI (.ci/run only checks that the targets compile) — far too slow; the same entry
# points have fast proptest properties in `cargo test --workspace`. Run it by hand after
# touching a parser, and before a release.
#
#   fuzz/run.sh                  each target until 10^6 executions (at most 600 s each; on a
#                                2-core machine that takes 30 s to 3 min per target)
#   fuzz/run.sh SECONDS          each target for SECONDS, however many executions that is
#   FUZZ_TARGETS="jwt_claims token_form" fuzz/run.sh 30    only some targets
#
# Needs cargo-fuzz (installed with `cargo install cargo-fuzz --locked` when missing); on a stable toolchain the nightly
# flags it uses are enabled with RUSTC_BOOTSTRAP=1, as here. Builds go to fuzz/target (the
# main target dir is untouched; the first build, ASan and coverage instrumented, takes ~20 min
# on 2 busy cores). Seeds: fuzz/corpus/<target>/ (checked in, only read); what
# the fuzzer adds goes to fuzz/work/<target>/, crashes to fuzz/artifacts/<target>/ (both
# ignored by git). Reproduce a crash: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz
# <target> fuzz/artifacts/<target>/crash-… ; minimise with `cargo fuzz tmin`.
#
# Prints per target: executions, executions per second, crashes; exits non-zero on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  seconds="$1"; limits=(-max_total_time="$1")
else
  seconds="10^6 runs, at most 600"; limits=(-runs=1000000 -max_total_time=600)
fi
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets="${FUZZ_TARGETS:-$("${fuzz[@]}" list --fuzz-dir fuzz)}"
"${fuzz[@]}" build --fuzz-dir fuzz

failed=0
report=()
for target in $targets; do
  mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
  log="fuzz/work/$target.log"
  before=$(ls "fuzz/artifacts/$target" | wc -l)
  echo "== $target: ${seconds}s" >&2
  status=0
  "${fuzz[@]}" run --fuzz-dir fuzz "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
    "${limits[@]}" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(( $(ls "fuzz/artifacts/$target" | wc -l) - before ))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # a failure that left no artifact (e.g. the build or the harness itself)
  fi
  if [ "$crashes" -ne 0 ]; then
    failed=1
    echo "-- $target failed (exit $status); the end of $log:" >&2
    tail -40 "$log" >&2
  fi
  report+=("$(printf '%-16s %12s %10s %8s' "$target" "${runs:-?}" "${rate:-?}" "$crashes")")
done

printf '%-16s %12s %10s %8s\n' target executions exec/s crashes
printf '%s\n' "${report[@]}"
exit "$failed"
