# syntax=docker/dockerfile:1
#
# One image for the api, the worker and the CLI (docker-compose.yml picks the command):
#   api     node apps/api/dist/main.js       (the default CMD)
#   worker  node apps/worker/dist/main.js
#   CLI     node apps/cli/dist/main.js …
#
# Install scripts of dependencies never run: the project's npm policy (`allowScripts` in
# package.json) denies rocksdb's and esbuild's, and the npm that ships with node:20 (10.x)
# does not read that field, so `--ignore-scripts` says the same thing to every npm.
# rocksdb loads its bundled linux-x64 glibc prebuild at run time (node-gyp-build); bookworm is
# glibc. On arm64 there is no prebuild: build with `--platform linux/amd64` there.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, then tsc -b ------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/security/package.json packages/security/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/contracts/package.json packages/contracts/
COPY packages/state/package.json packages/state/
COPY packages/seed/package.json packages/seed/
COPY packages/archive/package.json packages/archive/
COPY packages/s3/package.json packages/s3/
COPY packages/directory-archives/package.json packages/directory-archives/
COPY packages/restore/package.json packages/restore/
COPY apps/worker/package.json apps/worker/
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY packages/ packages/
COPY apps/ apps/
# /out: each workspace as it runs, i.e. without its TypeScript sources but with everything else
# it reads at run time (package.json, dist/, and files such as apps/api/public/ and openapi.yaml).
RUN npm run build \
 && mkdir -p /out/apps /out/packages \
 && for ws in packages/* apps/*; do \
      cp -R "$ws" "/out/$ws" && rm -rf "/out/$ws/src" "/out/$ws/tsconfig.json" "/out/$ws"/*.tsbuildinfo; \
    done \
 && cp package.json package-lock.json /out/

# ---- deps: production dependencies only (same lock file, same policy) ----------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=build /out/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime -------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# The worker's memory settings (README, "Memory"): glibc maps large buffers on their own, so the
# worker's memory goes back to the system after each backup; two malloc arenas; a 4 MiB young
# generation. The api runs with them too (they cost it nothing measurable).
ENV NODE_ENV=production \
    CHANGO_DATA_DIR=/var/lib/chango \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_ARENA_MAX=2 \
    NODE_OPTIONS=--max-semi-space-size=4
# A fixed uid/gid: compose bind-mounts secret files with their host owner and mode, so the
# host files must be readable by 10001 (deploy/make-secrets.sh takes care of that).
RUN groupadd --system --gid 10001 chango \
 && useradd --system --uid 10001 --gid chango --home-dir /app --shell /usr/sbin/nologin chango \
 && mkdir -p /var/lib/chango \
 && chown chango:chango /var/lib/chango \
 && chmod 0700 /var/lib/chango
WORKDIR /app
# node_modules holds the workspace links (@chango/* -> ../../packages/*, ../../apps/*).
COPY --from=deps /app/ ./
# The worker's stores live here; compose mounts a named volume, which starts with this
# folder's owner and mode (no VOLUME line: CLI runs must not leave anonymous volumes behind).
USER chango
EXPOSE 8080
CMD ["node", "apps/api/dist/main.js"]
