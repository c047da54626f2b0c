#!/usr/bin/env bash
# End-to-end check for contributors with Docker: a kind cluster, Gantry's image built from this tree
# and loaded into it, the chart installed with one small class, and the Deployment rolled out.
#
#   hack/e2e-kind.sh               build, install, wait, print the class as Gantry sees it
#   GANTRY_GITHUB_TOKEN=… GANTRY_GITHUB_ORG=acme hack/e2e-kind.sh
#                                  the same with GitHub Actions on, so a job can be queued
#   KEEP_CLUSTER=1                 leave the cluster running afterwards (default: deleted on exit)
#
# Needs docker (with buildx), kind, kubectl, helm and jq on PATH, and `npm ci` done (for `gantry status`). The cluster is named gantry-e2e.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster=gantry-e2e
namespace=gantry-system
image=gantry:e2e
# Tags are fine here: the image stays local. Releases pin by digest (.github/workflows/release.yml).
build_image=${BUILD_IMAGE_TAG:-node:24-bookworm-slim}
runtime_image=${RUNTIME_IMAGE_TAG:-gcr.io/distroless/nodejs24-debian12:nonroot}

for tool in docker kind kubectl helm jq; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "e2e-kind: no Docker engine answers" >&2; exit 1; }

# The Dockerfile refuses unpinned bases, so resolve the tags to the digests they point at now.
digest_of() { docker buildx imagetools inspect "$1" --format '{{json .Manifest}}' | jq -r .digest; }
build_ref="$build_image@$(digest_of "$build_image")"
runtime_ref="$runtime_image@$(digest_of "$runtime_image")"

if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
values=$(mktemp)
trap 'rm -f "$values"; [[ -n "${KEEP_CLUSTER:-}" ]] || kind delete cluster --name "$cluster"' EXIT
kubectl config use-context "kind-$cluster" >/dev/null

echo "== image"
docker buildx build --load -t "$image" \
  --build-arg BUILD_IMAGE="$build_ref" --build-arg RUNTIME_IMAGE="$runtime_ref" .
kind load docker-image "$image" --name "$cluster"

echo "== chart"
cat >"$values" <<YAML
image: { repository: gantry, tag: e2e, pullPolicy: Never }
replicaCount: 1
config:
  classes:
    smoke:
      namespace: gantry-e2e-runners
      match: { github: { labels: [self-hosted, linux, gantry-smoke] } }
      maxRunners: 2
      resources: { requests: { cpu: 100m, memory: 128Mi }, limits: { memory: 256Mi } }
YAML
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
if [[ -n "${GANTRY_GITHUB_TOKEN:-}" ]]; then
  kubectl -n "$namespace" create secret generic gantry-github-token \
    --from-literal=token="$GANTRY_GITHUB_TOKEN" --dry-run=client -o yaml | kubectl apply -f -
  cat >>"$values" <<YAML
  github:
    enabled: true
    auth: { kind: token }
    runners: { org: ${GANTRY_GITHUB_ORG:?GANTRY_GITHUB_ORG names the organisation the runners join} }
secrets:
  githubAuth: { existingSecret: gantry-github-token }
YAML
fi
helm upgrade --install gantry chart --namespace "$namespace" --values "$values" --wait --timeout 3m

echo "== smoke"
kubectl -n "$namespace" rollout status deployment/gantry --timeout 120s
kubectl -n "$namespace" port-forward service/gantry 18080:8080 >/dev/null &
forward=$!
sleep 2
npm run --silent gantry -- status --url http://127.0.0.1:18080
kill "$forward"

cat <<TEXT
Gantry runs in kind-$cluster with the class "smoke".
To queue a job (needs GANTRY_GITHUB_TOKEN and GANTRY_GITHUB_ORG above, and KEEP_CLUSTER=1), push
a workflow to a repository of that organisation with
    jobs: { smoke: { runs-on: [self-hosted, linux, gantry-smoke], steps: [{ run: echo hello }] } }
and watch the runner pod start:
    kubectl -n gantry-e2e-runners get pods -w
TEXT
