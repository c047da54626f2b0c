# syntax=docker/dockerfile:1
# Gantry's image: Node.js 24, production dependencies only, non-root, no shell.
#
# Both base images are required build arguments pinned by digest, so a rebuild cannot silently pick
# up a different base. The release workflow resolves them; by hand:
#   docker buildx imagetools inspect node:24-bookworm-slim --format '{{json .Manifest}}' | jq -r .digest
#   docker buildx imagetools inspect gcr.io/distroless/nodejs24-debian12:nonroot --format '{{json .Manifest}}' | jq -r .digest
#   docker buildx build \
#     --build-arg BUILD_IMAGE=node:24-bookworm-slim@sha256:<digest> \
#     --build-arg RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:<digest> .
ARG BUILD_IMAGE
ARG RUNTIME_IMAGE

# The output is platform-independent JavaScript and no production dependency has native code, so
# the build runs on the builder's own platform (no emulation for multi-platform images).
FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS build
ARG BUILD_IMAGE
ARG RUNTIME_IMAGE
# Refuse a base that is not pinned by digest (the runtime stage has no shell to check itself).
RUN for ref in "$BUILD_IMAGE" "$RUNTIME_IMAGE"; do \
      case "$ref" in *@sha256:????????????????????????????????????????????????????????????????) ;; \
        *) echo "base image '$ref' must be pinned as name@sha256:<digest>" >&2; exit 1 ;; esac; \
    done
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency's lifecycle scripts run; none is needed to compile (the node@24 devDependency's
# installer is skipped, the image's own Node runs tsc).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# A fresh install from the lock file rather than a prune, so nothing from the dev tree can remain.
FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM ${RUNTIME_IMAGE} AS runtime
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "dist/src/main.js"]
