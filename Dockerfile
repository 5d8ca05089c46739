# syntax=docker/dockerfile:1
#
# ek-sidecar container image.
#
#   docker build -t ek-sidecar:0.1.0 .
#
# Both base images are pinned by tag and by digest. The digests were not resolved against the registries from the
# machine this file was written on (it has no network access to them); they are the digests that many public
# Dockerfiles and build notes pin for these exact tags, found with a code search of public repositories in 2026
# (one of them: "gcr.io/distroless/nodejs24-debian12:nonroot … resolved 2026-09-19; the manifest list carries
# linux/amd64 and linux/arm64"; another records Node v24.21.0 in node:24-bookworm-slim@sha256:0e0ff40c…).
# Refresh both together, e.g. `docker buildx imagetools inspect gcr.io/distroless/nodejs24-debian12:nonroot`,
# or let Renovate/Dependabot maintain them.

# ---- build: the whole toolchain; bundles src/ and its dependencies into one file, dist/bin.js ------------------
FROM node:24-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6 AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Plain `npm ci`, scripts included: the node@24 devDependency installs its Node binary in a preinstall script, and
# the npm scripts (`npm run build`) run on it.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime: distroless Node 24, no shell, no package manager -------------------------------------------------
FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ek-sidecar" \
      org.opencontainers.image.description="Kubernetes sidecar that keeps a fresh Enkryptify JWT on a shared volume and on loopback" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"

ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and read-only to the process: the image needs no writable path of its own, so it
# runs with readOnlyRootFilesystem. It writes only to the JWT volume it is given (default /var/run/enkryptify).
# One bundled file (esbuild): the runtime dependencies are inside it, so the image carries no node_modules, and a
# start reads one file instead of some 350 (faster start-up and exec probes, less memory).
COPY package.json ./
COPY --from=build /src/dist/bin.js ./dist/bin.js

# The distroless "nonroot" user, numeric so that Kubernetes can verify runAsNonRoot.
USER 65532:65532

# Metrics and health (/metrics, /healthz, /readyz). The token API (9731) listens on loopback only: nothing to expose.
EXPOSE 9732

ENTRYPOINT ["/nodejs/bin/node", "/app/dist/bin.js"]
CMD ["run"]
