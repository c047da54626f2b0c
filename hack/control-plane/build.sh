#!/usr/bin/env bash
# Builds the local control plane from upstream Go modules (through the Go module proxy) into a cache
# outside the repository, one folder per component and version, so a second run costs nothing:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                              (go.etcd.io/etcd/server/v3)
#   kwok                                                              (sigs.k8s.io/kwok)
#   helm                                                              (helm.sh/helm/v3)
#   promtool                                                          (github.com/prometheus/prometheus)
#   prometheus-operator CRDs (ServiceMonitor, PrometheusRule) in crds/ (github.com/prometheus-operator/prometheus-operator)
#   Tekton Pipelines CRDs (Pipeline, PipelineRun, Task, TaskRun, …) in tekton-crds/ (github.com/tektoncd/pipeline)
#   cert-manager CRDs (Certificate, Issuer) in cert-manager-crds/     (github.com/cert-manager/cert-manager)
#   tekton-controller, and its release's ConfigMaps in tekton-config/  (github.com/tektoncd/pipeline)
# Prints the directory holding all binaries on its last line of stdout.
# GANTRY_BIN_DIR=/path skips the build and uses binaries already there (it is checked, not built);
# promtool, crds/, tekton-crds/, cert-manager-crds/, tekton-controller and tekton-config/ are
# optional there: what needs them skips (or is not installed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${GANTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}
bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm)
log() { printf '[control-plane build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -n ${GANTRY_BIN_DIR:-} ]]; then
  for b in "${bins[@]}"; do
    [[ -x $GANTRY_BIN_DIR/$b ]] || { echo "GANTRY_BIN_DIR=$GANTRY_BIN_DIR has no executable $b" >&2; exit 2; }
  done
  echo "$GANTRY_BIN_DIR"
  exit 0
fi

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "go is required to build the control plane (or set GANTRY_BIN_DIR)" >&2; exit 2; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=${GOPROXY:-https://proxy.golang.org}

# build_component NAME VERSION FUNCTION: runs FUNCTION OUTDIR in a scratch module unless NAME-VERSION is cached.
build_component() {
  local name=$1 version=$2 fn=$3 dest="$cache/$1-$2"
  if [[ -f $dest/.complete ]]; then log "$name $version: cached in $dest"; return; fi
  local work; work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-build-$name.XXXXXX")
  local start=$SECONDS
  log "$name $version: building (first time only)"
  mkdir -p "$cache"
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  ( cd "$work" && go mod init gantry.invalid/build-"$name" >/dev/null 2>&1 && "$fn" "$dest.partial" "$version" )
  touch "$dest.partial/.complete"
  rm -rf "$dest" && mv "$dest.partial" "$dest"
  rm -rf "$work"
  log "$name $version: built in $((SECONDS - start))s"
}

build_kubernetes() {
  local out=$1 k8s=$2 staging="v0.${2#v1.}" minor
  minor=$(cut -d. -f2 <<<"$k8s")
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p')
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local paths;
  # a dependent module must replace each with its published tag instead.
  local mods; mods=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$gomod")
  for m in $mods; do go mod edit -replace="$m=$m@$staging"; done
  go mod edit -go="$(sed -n 's/^go //p' "$gomod")"
  grep '^godebug' "$gomod" >>go.mod || true
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl) pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  log "kubernetes $k8s: resolving modules"
  go get "${pkgs[@]/%/@$k8s}" >&2
  local ldflags="-s -w" p date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  for p in "${pkgs[@]}"; do
    log "kubernetes $k8s: compiling $(basename "$p")"
    go build -trimpath -ldflags "$ldflags" -o "$out/" "$p"
  done
}

build_etcd() {
  local out=$1 v=$2
  go get "go.etcd.io/etcd/server/v3@$v" >&2
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  local out=$1 v=$2
  go get "sigs.k8s.io/kwok/cmd/kwok@$v" >&2
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwok v0.8 ships no default stages; keep the module's stage files beside the binary for reference.
  local dir; dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  cp -r "$dir/kustomize/stage" "$out/stage" && chmod -R u+w "$out/stage"
}

build_helm() {
  local out=$1 v=$2 kube
  go get "helm.sh/helm/v3/cmd/helm@$v" >&2
  kube=$(go list -m -f '{{.Version}}' k8s.io/client-go)   # v0.X.Y -> Kubernetes 1.X
  local minor; minor=$(cut -d. -f2 <<<"$kube")
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  go build -trimpath -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm
}

build_promtool() {
  local out=$1 v=$2 pkg=github.com/prometheus/prometheus/cmd/promtool
  go get "$pkg@$v" >&2
  # Module v0.3MM.P is Prometheus 3.MM.P; promtool --version reports it.
  local minor=${v#v0.3} release
  release="3.$((10#${minor%%.*})).${minor#*.}"
  local p=github.com/prometheus/common/version
  go build -trimpath -ldflags "-s -w -X $p.Version=$release -X $p.Branch=module -X $p.Revision=$v" -o "$out/promtool" "$pkg"
}

# Copies files out of a Go module, downloaded but not built: DEST MODULE@VERSION PATTERN NAME...,
# where PATTERN is the path in the module with %s standing for each NAME.
copy_module_files() {
  local dest=$1 module=$2 pattern=$3 dir name
  shift 3
  dir=$(go mod download -json "$module" | sed -n 's/.*"Dir": "\([^"]*\)".*/\1/p')
  mkdir -p "$dest"
  for name in "$@"; do
    # shellcheck disable=SC2059 # the pattern is the format
    cp "$dir/$(printf "$pattern" "$name")" "$dest/"
  done
  chmod -R u+w "$dest"
}

# Only the two CRDs Gantry's chart creates objects of.
fetch_operator_crds() {
  copy_module_files "$1/crds" "github.com/prometheus-operator/prometheus-operator@$2" \
    example/prometheus-operator-crd/monitoring.coreos.com_%s.yaml servicemonitors prometheusrules
}

# Tekton's own CRD files, installed into the local control plane at start.
fetch_tekton_crds() {
  copy_module_files "$1/tekton-crds" "github.com/tektoncd/pipeline@$2" \
    config/300-crds/300-%s.yaml pipeline pipelinerun task taskrun customrun stepaction
}

# Tekton Pipelines' controller (cmd/controller), which tests run on demand against the control
# plane, and in tekton-config/ what it needs beside the CRDs above: the ConfigMaps of its release
# (config/config-*.yaml), read at start, and the two CRDs only its informers use.
build_tekton_controller() {
  local out=$1 v=$2 module=github.com/tektoncd/pipeline
  go get "$module/cmd/controller@$v" >&2
  go build -trimpath -ldflags "-s -w" -o "$out/tekton-controller" "$module/cmd/controller"
  local dir; dir=$(go list -m -f '{{.Dir}}' "$module")
  mkdir -p "$out/tekton-config"
  cp "$dir"/config/config-*.yaml "$dir"/config/300-crds/300-{resolutionrequest,verificationpolicy}.yaml "$out/tekton-config/"
  chmod -R u+w "$out/tekton-config"
}

# Only the two CRDs Gantry's chart creates objects of (its webhook certificate).
fetch_cert_manager_crds() {
  copy_module_files "$1/cert-manager-crds" "github.com/cert-manager/cert-manager@$2" \
    deploy/crds/cert-manager.io_%s.yaml certificates issuers
}

build_component kubernetes "$KUBERNETES_VERSION" build_kubernetes
build_component etcd "$ETCD_VERSION" build_etcd
build_component kwok "$KWOK_VERSION" build_kwok
build_component helm "$HELM_VERSION" build_helm
build_component promtool "$PROMETHEUS_VERSION" build_promtool
build_component prometheus-operator-crds "$PROMETHEUS_OPERATOR_VERSION" fetch_operator_crds
build_component tekton-crds "$TEKTON_VERSION" fetch_tekton_crds
build_component cert-manager-crds "$CERT_MANAGER_VERSION" fetch_cert_manager_crds
build_component tekton-controller "$TEKTON_VERSION" build_tekton_controller

# One folder of links, named by the whole version set, is what callers use.
set_dir="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION-prometheus-$PROMETHEUS_VERSION-operator-$PROMETHEUS_OPERATOR_VERSION-tekton-$TEKTON_VERSION-cert-manager-$CERT_MANAGER_VERSION"
mkdir -p "$set_dir"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn "$cache/kubernetes-$KUBERNETES_VERSION/$b" "$set_dir/$b"; done
ln -sfn "$cache/etcd-$ETCD_VERSION/etcd" "$set_dir/etcd"
ln -sfn "$cache/kwok-$KWOK_VERSION/kwok" "$set_dir/kwok"
ln -sfn "$cache/helm-$HELM_VERSION/helm" "$set_dir/helm"
ln -sfn "$cache/promtool-$PROMETHEUS_VERSION/promtool" "$set_dir/promtool"
ln -sfn "$cache/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION/crds" "$set_dir/crds"
ln -sfn "$cache/tekton-crds-$TEKTON_VERSION/tekton-crds" "$set_dir/tekton-crds"
ln -sfn "$cache/cert-manager-crds-$CERT_MANAGER_VERSION/cert-manager-crds" "$set_dir/cert-manager-crds"
ln -sfn "$cache/tekton-controller-$TEKTON_VERSION/tekton-controller" "$set_dir/tekton-controller"
ln -sfn "$cache/tekton-controller-$TEKTON_VERSION/tekton-config" "$set_dir/tekton-config"
echo "$set_dir"
