# syntax=docker/dockerfile:1
# opencrvs-bridge: docs/deployment.md explains building, running, volumes and secrets.
#   docker build -t opencrvs-bridge .
#   cp examples/production.yaml bridge.yaml   # then adapt it; examples/bridge.yaml is for the sandboxes and
#                                             # listens on 127.0.0.1:8081, which -p 8080:8080 never reaches
#   docker run -v ./bridge.yaml:/config/bridge.yaml:ro -v bridge-data:/data -v ./secrets:/run/secrets:ro \
#     -p 8080:8080 opencrvs-bridge
# test/integration/container-entrypoint.test.ts replays these steps (no Docker engine needed).

# Build stage: every dependency, better-sqlite3 compiled natively for this image's Node and glibc,
# TypeScript compiled to dist/, then the dev dependencies pruned away.
FROM node:22-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile src/, which comes later (so that editing src/ keeps this
# layer and its slow native build cached); better-sqlite3 is built explicitly.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 --build-from-source
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: compiled code, production dependencies, mappings, form profiles and examples.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    BRIDGE_CONFIG=/config/bridge.yaml \
    BRIDGE_HEALTH_FILE=/tmp/opencrvs-bridge.health
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY mappings ./mappings
COPY profiles ./profiles
COPY examples ./examples
COPY LICENSE ./
# `docker build --build-arg SOURCE_COMMIT=$(git rev-parse HEAD) …`: `--version` then names the commit too
# (the build context has no .git to read it from; without the argument it is left out).
ARG SOURCE_COMMIT=
RUN if [ -n "$SOURCE_COMMIT" ]; then echo "$SOURCE_COMMIT" > /app/BUILD_COMMIT; fi
# The ledger lives in /data (store.path: /data/bridge.db); the config is mounted read-only in /config.
# /data is also the working directory, so the default store.path (./bridge.db) lands on the volume,
# where uid 1000 can write, rather than in the root-owned /app. 0700: the ledger keeps personal data
# (the bridge creates it 0600 too); a named volume takes this mode when first mounted, a bind mount keeps the host's.
RUN mkdir -p /data /config && chown node:node /data && chmod 0700 /data
USER node
VOLUME ["/data"]
WORKDIR /data
# serve writes the address of its /healthz to BRIDGE_HEALTH_FILE once it listens, so the health check
# follows http.host and http.port as configured (8080 is only the default it probes before that).
# The admin page listens on admin.host 127.0.0.1, port 9080, by default: not reachable from outside the
# container, so not exposed here (docs/deployment.md §1 says how to expose it deliberately).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/bin/healthcheck.js"]
ENTRYPOINT ["node", "/app/bin/opencrvs-bridge.js"]
CMD ["serve"]
