#!/usr/bin/env bash
# Benchmarks, run inside a throwaway host (npm run bench). Each figure is a ratio against a
# reference measured in the same hyperfine session, so load on the machine shifts both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
T=dist/tsnet
$T run --rm -- true # makes tsnet0 once, as a user's first run would
hyperfine -N --warmup 5 --runs "${RUNS:-60}" --export-json "$out/cycle.json" \
  -n 'unshare -n true' 'unshare -n true' \
  -n 'ip by hand (9 processes)' 'bash bench/by-hand.sh' \
  -n 'tsnet run --network none' "$T run --rm --network none -- true" \
  -n 'tsnet run (bridge)' "$T run --rm -- true" \
  -n 'tsnet --version (start-up)' "$T --version" >/dev/null
bun bench/report.ts "$out/cycle.json"
