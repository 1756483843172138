# Tresor serving image: the model-serving enclave (CPU llama.cpp engine; CUDA builds are not part of this image).
# Build from the repository root (docs/deploy.md "Reproducible images"):
#   docker buildx build -f deploy/docker/serving.Dockerfile --provenance=false --sbom=false \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --pretty=%ct) \
#     --output type=oci,dest=tresor-serving.oci.tar,rewrite-timestamp=true .
#
# Base images are pinned by digest. node:20-bookworm-slim: the linux/amd64+arm64 index digest found
# pinned in several independent public repositories (not re-checked against Docker Hub from this
# machine; verify with `docker buildx imagetools inspect node:20-bookworm-slim`). The distroless
# runtime digest could not be verified offline: it is the all-zero PLACEHOLDER, which cannot be pulled,
# so a build fails until you pass --build-arg RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot@sha256:<digest>
# (`crane digest gcr.io/distroless/nodejs20-debian12:nonroot`). The lint test (deploy/src/dockerfile-lint.test.ts)
# and `lintDockerfile` in release mode refuse the placeholder.
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot@sha256:0000000000000000000000000000000000000000000000000000000000000000
# Debian packages for the native builds (better-sqlite3, pkcs11js) come from a fixed snapshot, so a
# rebuild gets the same compiler and headers.
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

# ── runtime: distroless Node 20, no shell, no package manager, non-root ─────────────────────
FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=deps /deps /app
COPY --from=build /out /app
ENV NODE_ENV=production
# 65532 = distroless "nonroot"; the manifests also set runAsUser 65532 and a read-only root file
# system: the service writes only to /tmp (an in-guest memory volume).
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/nodejs/bin/node", "/app/apps/cli/bin/tresor.js"]
CMD ["serving", "serve", "--config", "/etc/tresor/config.json"]
