#!/usr/bin/env bash
# Runs each benchmark program under bench/ (each prints podkit beside its
# baseline and the ratio). BENCH=name runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in bench/*/; do
  name=$(basename "$dir")
  if [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ]; then continue; fi
  if ! grep -qs '^package main' "$dir"*.go; then continue; fi
  echo "== bench/$name"
  go run "./$dir"
done
