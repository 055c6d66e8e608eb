# syntax=docker/dockerfile:1
# opencrvs-bridge: docs/deployment.md explains building, running, volumes and secrets.
#   docker build --build-arg SOURCE_COMMIT=$(git rev-parse HEAD) -t opencrvs-bridge .
#   cp examples/production.yaml bridge.yaml   # then adapt it; examples/bridge.yaml is for the sandboxes and
#                                             # listens on 127.0.0.1:8081, which -p 8080:8080 never reaches
#   docker run --stop-timeout 40 -v ./bridge.yaml:/config/bridge.yaml:ro -v bridge-data:/data \
#     -v ./secrets:/run/secrets:ro -p 8080:8080 opencrvs-bridge
# (--stop-timeout 40: deliveries in flight get up to 30 s to finish; Docker's default 10 s cuts them short.)
# test/integration/container-entrypoint.test.ts replays these steps (no Docker engine needed).

# Build stage: every dependency, better-sqlite3 compiled natively for this image's Node and glibc,
# TypeScript compiled to dist/, then the dev dependencies pruned away.
# Node 22 LTS, pinned to a patch release so that a rebuild gets the same Node (and ABI for the native
# module) until this line is changed on purpose; both stages must name the same one.
FROM node:22.23.3-bookworm-slim AS build
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
# better-sqlite3's compile leftovers (objects, the static SQLite library, its sources, a test extension:
# about 27 MB) stay out of the runtime image. It loads build/Release/better_sqlite3.node, which the
# `bindings` package finds from the package.json beside lib/: both kept.
RUN cd node_modules/better-sqlite3 \
 && rm -rf deps src build/deps build/Release/obj build/Release/obj.target build/Release/.deps \
      build/Release/sqlite3.a build/Release/test_extension.node \
 && test -f build/Release/better_sqlite3.node

# Runtime stage: compiled code, production dependencies, mappings, form profiles and examples.
FROM node:22.23.3-bookworm-slim
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
# package.json's version (test/integration/container-entrypoint.test.ts keeps them equal), and the commit.
LABEL org.opencontainers.image.title="opencrvs-bridge" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.licenses="MPL-2.0"
RUN if [ -n "$SOURCE_COMMIT" ]; then echo "$SOURCE_COMMIT" > /app/BUILD_COMMIT; fi
# The ledger lives in /data (store.path: /data/bridge.db); the config is mounted read-only in /config.
# A relative store.path starts from the config's folder; /data stays the working directory, where an
# image that used the default (./bridge.db, read from the working directory before) keeps finding its
# ledger on the volume, where uid 1000 can write. 0700: the ledger keeps personal data
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
