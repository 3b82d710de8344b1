#!/usr/bin/env bash
# Quick start: builds the server and the bundled plugins (release), places the plugin .so files
# in dropins/, and starts the server from conf/ on the embedded SQLite database.
#   ./scripts/serve.sh            # then: curl -k https://localhost:9443/health
# Extra arguments go to `tollgate serve` (e.g. --conf other-conf).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
mkdir -p dropins
chmod go-w dropins
# Every cdylib of the workspace is a bundled plugin (plugins/*); copy them in.
shopt -s nullglob
for so in target/release/lib*.so; do
  cp "$so" dropins/
done
exec target/release/tollgate serve "$@"
