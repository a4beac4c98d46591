# One image for every LogPlayer service; docker-compose.yml picks the entry point.
# Build: docker build -t logplayer .   (not run on our CI machines: they have no Docker engine)
FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles its native addon when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
RUN npm install -g pnpm@9.15.9
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml turbo.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY tests/package.json ./tests/package.json
RUN pnpm install --frozen-lockfile
RUN pnpm -s build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
# Data lives in named volumes mounted under /data (see docker-compose.yml). Each
# mount point must exist here, owned by node: Docker seeds a new named volume
# with the image's directory (and its owner), and would otherwise create it
# owned by root, which the node user cannot write.
RUN mkdir -p /data/tls /data/logstore-1 /data/logstore-2 /data/logstore-3 /data/shard-0 /data/shard-1 /data/shard-2 \
 && chown -R node:node /data
USER node
ENTRYPOINT ["node"]
CMD ["packages/client/dist/lpctl.js", "--help"]
