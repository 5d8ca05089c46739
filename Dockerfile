# syntax=docker/dockerfile:1
#
# ek-sidecar container image.
#
#   docker build -t ek-sidecar:0.1.0 .
#
# Base images are pinned by tag and digest. THE DIGESTS BELOW WERE NOT RESOLVED FROM THE MACHINE THIS FILE WAS
# WRITTEN ON: it reaches no container registry. They were found in public Dockerfiles by a code search and are
# unverified. Before the first build you publish, check them against the registries:
#   deploy/image/check-base-digests.sh        (crane, or docker buildx imagetools inspect)
# which resolves each FROM's tag and fails on a digest that differs; then keep them current with Renovate
# (renovate.json: docker:pinDigests opens a pull request whenever a tag moves). docs/image.md has the procedure.

# ---- build: bundles src/ and its dependencies (dist/bin.js and its chunks, the snapshot builder's script), plus the
# SBOM and licenses. No startup snapshot here: a snapshot runs only on the Node.js binary that built it. ----------
FROM node:24-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6 AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the node@24 devDependency's preinstall would download a second Node.js, and this image has one.
# esbuild's own postinstall (it checks and installs the platform binary) is then run on its own.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild esbuild
COPY tsconfig.json ./
COPY src ./src
COPY deploy/build ./deploy/build
COPY deploy/image/bundle-notices.ts ./deploy/image/
# Writes dist/ (see deploy/build/build.ts), dist/sbom.cdx.json (CycloneDX, the production dependencies that are
# bundled) and dist/THIRD_PARTY_LICENSES (their license texts).
RUN npm run build:bundle

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
# The bundle (esbuild): the runtime dependencies are inside it, so the image carries no node_modules and image
# scanners cannot see them; the CycloneDX SBOM beside it lists them (Trivy and Grype read *.cdx.json), with their
# licenses. There is no shell: --on-refresh can run only /nodejs/bin/node and files mounted into the container.
COPY package.json ./
COPY --from=build /src/dist/ ./dist/
# The startup snapshot, built here by the node that runs it (a blob works only on the binary that built it; exec form:
# no shell needed): every module and library already loaded, so a start skips most of its work. It writes
# dist/snapshot.blob and, beside it, dist/snapshot.json naming the binary, which dist/bin.js checks when it is started
# without --snapshot-blob (then it restarts itself from the blob, or starts the plain bundle and says why).
RUN ["/nodejs/bin/node", "--snapshot-blob", "dist/snapshot.blob", "--build-snapshot-config", "dist/snapshot-config.json"]

# The distroless "nonroot" user, numeric so that Kubernetes can verify runAsNonRoot.
USER 65532:65532

# Metrics and health (/metrics, /healthz, /readyz). The token API (9731) listens on loopback only: nothing to expose.
EXPOSE 9732

ENTRYPOINT ["/nodejs/bin/node", "--snapshot-blob", "/app/dist/snapshot.blob", "/app/dist/bin.js"]
CMD ["run"]
