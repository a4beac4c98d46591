# One image for every LogPlayer service; docker-compose.yml and deploy/kubernetes pick the entry point.
# Build: docker build -t logplayer .   (not run on our CI machines: they have no Docker engine;
# tests/deploy/compose.test.ts checks this file, and scripts/image-tree.sh is what the last stage copies).
#
# Node 22 is the LTS line this image runs (maintained until April 2027); the code also runs on Node 20.

FROM node:22-bookworm-slim AS build
# better-sqlite3 compiles its native addon when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
RUN npm install -g pnpm@9.15.9
WORKDIR /app
# Dependencies first, from the lockfile alone: editing a source file does not invalidate this layer,
# so a rebuild after a code change downloads nothing.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --offline --frozen-lockfile
RUN pnpm -s build
# Production dependencies only, then the runtime tree: package.json, node_modules and built dist/ of
# every workspace package; no sources, tests, source maps or dev tooling.
RUN pnpm install --offline --frozen-lockfile --prod \
 && scripts/image-tree.sh /image

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /image /app
# Data lives in named volumes mounted under /data (see docker-compose.yml). Each
# mount point must exist here, owned by node: Docker seeds a new named volume
# with the image's directory (and its owner), and would otherwise create it
# owned by root, which the node user cannot write.
RUN mkdir -p /data/tls /data/logstore-1 /data/logstore-2 /data/logstore-3 /data/shard-0 /data/shard-1 /data/shard-2 \
 && chown -R node:node /data
USER node
ENTRYPOINT ["node"]
CMD ["packages/client/dist/lpctl.js", "--help"]
