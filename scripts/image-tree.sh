#!/usr/bin/env bash
# Copies what the production image needs out of a built workspace whose node_modules hold production
# dependencies only (`pnpm install --prod` after `pnpm -s build`): the root node_modules, and for every
# workspace package its package.json, its node_modules links and its built dist/ without tests and
# source maps. No TypeScript sources, tests, docs or dev tooling. Used by the Dockerfile's build stage.
#   usage: scripts/image-tree.sh OUT_DIR
set -euo pipefail
out="${1:?usage: scripts/image-tree.sh OUT_DIR}"
cd "$(dirname "$0")/.."
mkdir -p "$out"
cp -a package.json node_modules "$out/"
for pkg in packages/* services/*; do
  [ -f "$pkg/package.json" ] || continue
  mkdir -p "$out/$pkg"
  cp -a "$pkg/package.json" "$out/$pkg/"
  [ -d "$pkg/node_modules" ] && cp -a "$pkg/node_modules" "$out/$pkg/"
  if [ -d "$pkg/dist" ]; then
    (cd "$pkg" && find dist -type f ! -name '*.map' ! -name '*.test.js' ! -name '*.test.d.ts' ! -name '*.fixture.*' \
      ! -name '*.tsbuildinfo' -print0 | tar --null -T - -cf -) | tar -C "$out/$pkg" -xf -
  fi
done
