#!/usr/bin/env bash
# Fails when packages/proto/src/gen differs from what `pnpm generate` makes from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm -s generate
if [ -n "$(git status --porcelain -- packages/proto/src/gen)" ]; then
  echo "generated code is stale: run 'pnpm generate' and commit packages/proto/src/gen" >&2
  git status --porcelain -- packages/proto/src/gen >&2
  exit 1
fi
echo "generated code is up to date"
