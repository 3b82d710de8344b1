#!/usr/bin/env bash
# Runs every test: the workspace's unit and end-to-end tests (which build the out-of-tree
# plugins under examples/ and tests/fixtures/ themselves), then the example plugins' own tests.
# PostgreSQL tests run when TOLLGATE_TEST_POSTGRES_URL is set (CI sets it) and are skipped
# otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
for manifest in examples/*/Cargo.toml; do
  cargo test --manifest-path "$manifest" --target-dir target/plugin-fixtures
done
