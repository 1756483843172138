# Tresor gateway image: the AI gateway enclave: OHTTP endpoint and OpenAI-compatible API.
#
# The reproducible path is daemonless: `npm run images` builds this image from Debian packages and the
# npm registry only, twice identical (docs/deploy.md "Reproducible images"). This Dockerfile is for
# users with a registry and a Docker/BuildKit daemon:
#   skopeo copy oci-archive:dist-images/base.oci.tar docker://<registry>/tresor/base:trixie-nodejs20
#   docker buildx build -f deploy/docker/gateway.Dockerfile --provenance=false --sbom=false \
#     --build-arg RUNTIME_IMAGE=<registry>/tresor/base:trixie-nodejs20@sha256:<digest below> \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --pretty=%ct) \
#     --output type=oci,dest=tresor-gateway.oci.tar,rewrite-timestamp=true .
#
# RUNTIME_IMAGE is Tresor's own base (Debian trixie nodejs 20 from deploy/images/base-packages.lock,
# no shell, apt or dpkg, user 65532); `npm run images -- --update-lock` rewrites its digest here and
# the lint test (deploy/src/dockerfile-lint.test.ts) checks it equals the lock's `base-image`.
# `skopeo copy` keeps the manifest bytes, so the digest is the same in your registry. NODE_IMAGE
# (build stage only) is the node:20-bookworm-slim index digest found pinned in several public
# repositories, not re-checked against Docker Hub from the build machine (no registry access there).
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
ARG RUNTIME_IMAGE=ghcr.io/tresor/base:trixie-nodejs20@sha256:2f40e4034d9622368778d5fc8f9bd3b229250114861a3bea47c6aa9568ecef99
# Debian packages for the native builds (better-sqlite3, pkcs11js) in the build stage come from a
# fixed snapshot, so a rebuild gets the same compiler and headers.
ARG DEBIAN_SNAPSHOT=20250701T000000Z

# ── build: compile the TypeScript workspaces ─────────────────────────────────────────────────
FROM ${NODE_IMAGE} AS build
ARG DEBIAN_SNAPSHOT
ARG SOURCE_DATE_EPOCH=0
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
RUN printf 'deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/%s bookworm main\n' "${DEBIAN_SNAPSHOT}" > /etc/apt/sources.list \
 && rm -f /etc/apt/sources.list.d/debian.sources \
 && apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npm run build \
 && mkdir -p /out \
 && for w in $(node -p "require('./package.json').workspaces.join(' ')"); do \
      mkdir -p "/out/$w" && cp "$w/package.json" "/out/$w/" && cp -r "$w/dist" "/out/$w/dist"; \
    done \
 && cp -r apps/cli/bin /out/apps/cli/bin

# ── deps: production dependencies only, exactly as the lockfile says ─────────────────────────
FROM build AS deps
RUN rm -rf node_modules packages/*/node_modules services/*/node_modules apps/*/node_modules deploy/node_modules \
 && npm ci --omit=dev --no-audit --no-fund \
 && mkdir -p /deps && cp -a package.json package-lock.json node_modules /deps/ \
 && for w in $(node -p "require('./package.json').workspaces.join(' ')"); do \
      if [ -d "$w/node_modules" ]; then mkdir -p "/deps/$w" && cp -a "$w/node_modules" "/deps/$w/"; fi; \
    done

# ── runtime: Tresor base (Debian trixie nodejs 20), no shell, no package manager, non-root ──
FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=deps /deps /app
COPY --from=build /out /app
# Memory settings of the gateway process, as `tresor up` starts it (serviceProcessEnv('gateway') and
# SERVICE_NODE_FLAGS in apps/cli/src/platform/children.ts, measured in bench/harness/notes.md).
ENV NODE_ENV=production HOME=/home/nonroot MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
# 65532 = "nonroot" in the base's /etc/passwd; the manifests also set runAsUser 65532 and a read-only root file
# system: the service writes only to /tmp (an in-guest memory volume).
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/bin/node", "--max-semi-space-size=2", "--liftoff-only", "--heap-growing-percent=10", "--max-old-space-size=1024", "/app/apps/cli/bin/tresor.js"]
CMD ["gateway", "serve", "--config", "/etc/tresor/config.json"]
