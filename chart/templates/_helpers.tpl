{{/* Names and labels. */}}
{{- define "gantry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gantry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "gantry.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "gantry.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gantry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gantry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gantry.serviceAccountName" -}}
{{- default (include "gantry.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "gantry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Whether Gantry listens for GitHub's webhook: the GitHub source is on and a webhook secret is mounted.
*/}}
{{- define "gantry.githubWebhookEnabled" -}}
{{- $github := dig "github" dict (.Values.config | default dict) -}}
{{- if and (get $github "enabled") .Values.secrets.webhook.existingSecret (ne (get $github "mode" | default "webhook") "scaleSets") -}}true{{- end -}}
{{- end -}}

{{/*
GitHub in scale-set mode (config.github.mode scaleSets): Gantry holds the scale sets' message
sessions itself, so there is no webhook listener to publish.
*/}}
{{- define "gantry.githubScaleSets" -}}
{{- $github := dig "github" dict (.Values.config | default dict) -}}
{{- if and (get $github "enabled") (eq (get $github "mode" | default "webhook") "scaleSets") -}}true{{- end -}}
{{- end -}}

{{/*
GitHub's webhook listener port: config.github.webhook.port (Gantry's default 8081), apart from the
HTTP port of health, metrics and the status page.
*/}}
{{- define "gantry.githubWebhookPort" -}}
{{- $port := dig "github" "webhook" "port" 8081 (.Values.config | default dict) | int -}}
{{- if eq $port 0 -}}
{{- fail "config.github.webhook.port: expected a fixed port (1-65535); the Service needs it" -}}
{{- end -}}
{{- if eq $port (include "gantry.httpPort" . | int) -}}
{{- fail (printf "config.github.webhook.port: %d is config.http.port too; the webhook listener needs a port of its own" $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* Gantry's HTTP port: config.http.port, whose default (8080) is Gantry's. */}}
{{- define "gantry.httpPort" -}}
{{- $port := dig "http" "port" 8080 (.Values.config | default dict) | int -}}
{{- if eq $port 0 -}}
{{- fail "config.http.port: expected a fixed port (1-65535); the probes and the Service need it" -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* Where the existing Secrets are mounted. */}}
{{- define "gantry.githubAuthDir" -}}/etc/gantry/secrets/github-auth{{- end -}}
{{- define "gantry.webhookDir" -}}/etc/gantry/secrets/webhook{{- end -}}

{{- define "gantry.githubAuthKey" -}}
{{- $kind := dig "github" "auth" "kind" "" (.Values.config | default dict) -}}
{{- default (ternary "token" "private-key.pem" (eq $kind "token")) .Values.secrets.githubAuth.key -}}
{{- end -}}

{{/*
The runner namespaces, as a JSON list: every class's namespace (Gantry's default gantry-runners
when a class names none), sorted.
*/}}
{{- define "gantry.runnerNamespaces" -}}
{{- $namespaces := dict -}}
{{- range $name, $class := (.Values.config | default dict).classes -}}
{{- $namespace := default "gantry-runners" (get $class "namespace") -}}
{{- if eq $namespace $.Release.Namespace -}}
{{- fail (printf "config.classes.%s.namespace: %s is the release namespace; runner pods need a namespace of their own, away from Gantry's credentials" $name $namespace) -}}
{{- end -}}
{{- $_ := set $namespaces $namespace true -}}
{{- end -}}
{{- range $namespace, $_ := .Values.runnerNamespaces.overrides -}}
{{- if not (hasKey $namespaces $namespace) -}}
{{- fail (printf "runnerNamespaces.overrides.%s: no class of config.classes uses this namespace" $namespace) -}}
{{- end -}}
{{- end -}}
{{- keys $namespaces | sortAlpha | toJson -}}
{{- end -}}

{{/* Namespaces of untrusted and sandboxed classes, each to the first such class by name, as JSON. */}}
{{- define "gantry.sandboxNamespaces" -}}
{{- $namespaces := dict -}}
{{- $classes := (.Values.config | default dict).classes | default dict -}}
{{- range $name := keys $classes | sortAlpha -}}
{{- $class := get $classes $name -}}
{{- if or (get $class "untrusted") (get $class "sandboxed") -}}
{{- $namespace := default "gantry-runners" (get $class "namespace") -}}
{{- if not (hasKey $namespaces $namespace) -}}
{{- $_ := set $namespaces $namespace $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $namespaces -}}
{{- end -}}

{{/*
Deep merge of two maps as JSON: maps merge, everything else (lists, false, 0) from "over" wins.
Sprig's mergeOverwrite would keep a default true over an explicit false.
*/}}
{{- define "gantry.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "gantry.merge" (dict "base" $current "over" $value) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The settings of one runner namespace (.namespace), overrides merged over defaults, as JSON. */}}
{{- define "gantry.namespaceSettings" -}}
{{- $runner := .root.Values.runnerNamespaces -}}
{{- $over := get ($runner.overrides | default dict) .namespace | default dict -}}
{{- include "gantry.merge" (dict "base" ($runner.defaults | default dict) "over" $over) -}}
{{- end -}}

{{/*
Gantry's configuration as the ConfigMap holds it: config as written, plus the paths of the mounted
Secrets. Inline credentials are refused: a ConfigMap is readable by anyone who may read the namespace.
*/}}
{{- define "gantry.config" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $github := get $config "github" | default dict -}}
{{- $auth := get $github "auth" | default dict -}}
{{- $webhook := get $github "webhook" | default dict -}}
{{- range $key := list "privateKey" "token" -}}
{{- if hasKey $auth $key -}}
{{- fail (printf "config.github.auth.%s would be stored in a ConfigMap; put it in a Secret and name it in secrets.githubAuth.existingSecret" $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $webhook "secret" -}}
{{- fail "config.github.webhook.secret would be stored in a ConfigMap; put it in a Secret and name it in secrets.webhook.existingSecret" -}}
{{- end -}}
{{- if .Values.secrets.githubAuth.existingSecret -}}
{{- $pathKey := ternary "tokenPath" "privateKeyPath" (eq (get $auth "kind") "token") -}}
{{- if not (get $auth "kind") -}}
{{- fail "secrets.githubAuth.existingSecret is set: set config.github.auth.kind (app or token) and its ids too" -}}
{{- end -}}
{{- if hasKey $auth $pathKey -}}
{{- fail (printf "config.github.auth.%s: leave it out; the chart points it at secrets.githubAuth.existingSecret" $pathKey) -}}
{{- end -}}
{{- $_ := set $auth $pathKey (printf "%s/%s" (include "gantry.githubAuthDir" .) (include "gantry.githubAuthKey" .)) -}}
{{- $_ := set $github "auth" $auth -}}
{{- end -}}
{{- if .Values.secrets.webhook.existingSecret -}}
{{- if hasKey $webhook "secretPath" -}}
{{- fail "config.github.webhook.secretPath: leave it out; the chart points it at secrets.webhook.existingSecret" -}}
{{- end -}}
{{- $_ := set $webhook "secretPath" (printf "%s/%s" (include "gantry.webhookDir" .) (default "webhook-secret" .Values.secrets.webhook.key)) -}}
{{- $_ := set $github "webhook" $webhook -}}
{{- end -}}
{{- if $github -}}
{{- $_ := set $config "github" $github -}}
{{- end -}}
{{- if include "gantry.tektonEnabled" . -}}
{{- $tekton := include "gantry.tektonConfig" (dict "root" . "tekton" (get $config "tekton")) | fromJson -}}
{{- $_ := set $config "tekton" $tekton -}}
{{- end -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- $election := get $config "election" | default dict -}}
{{- if and (hasKey $election "enabled") (not (get $election "enabled")) -}}
{{- fail "replicaCount is above 1 but config.election.enabled is false: two controllers would both act" -}}
{{- end -}}
{{- $_ := set $election "enabled" true -}}
{{- if not (get $election "namespace") -}}
{{- $_ := set $election "namespace" .Release.Namespace -}}
{{- end -}}
{{- $_ := set $config "election" $election -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
Whether a monitoring.coreos.com object is rendered: .mode is auto, true or false; auto asks whether
the cluster serves the API, so an install without the Prometheus Operator does not fail.
*/}}
{{- define "gantry.monitoringEnabled" -}}
{{- $mode := toString .mode -}}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.root.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
true
{{- end -}}
{{- end -}}

{{/* Label matchers of this install's series in the alert rules. */}}
{{- define "gantry.ruleSelector" -}}
{{- default (printf "job=%q, namespace=%q" (include "gantry.fullname" .) .Release.Namespace) .Values.metrics.prometheusRule.selector -}}
{{- end -}}

{{/* An alert's labels: its severity (.severity) and metrics.prometheusRule.alertLabels. */}}
{{- define "gantry.alertLabels" -}}
severity: {{ .severity }}
{{- with .root.Values.metrics.prometheusRule.alertLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Whether the rendered config elects a leader (explicitly, or because there is more than one replica).
*/}}
{{- define "gantry.electionEnabled" -}}
{{- $election := get (.Values.config | default dict) "election" | default dict -}}
{{- if or (gt (int .Values.replicaCount) 1) (get $election "enabled") -}}true{{- end -}}
{{- end -}}

{{/* Tekton: whether the queue is on (config.tekton.enabled). */}}
{{- define "gantry.tektonEnabled" -}}
{{- if dig "tekton" "enabled" false (.Values.config | default dict) -}}true{{- end -}}
{{- end -}}

{{/* The namespaces of queued PipelineRuns (config.tekton.namespaces), sorted, as a JSON list; empty: all. */}}
{{- define "gantry.tektonNamespaces" -}}
{{- dig "tekton" "namespaces" list (.Values.config | default dict) | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
The admission webhook's port: config.tekton.webhook.port (Gantry's default 8443), the container's and
the Service's alike.
*/}}
{{- define "gantry.webhookPort" -}}
{{- $port := dig "tekton" "webhook" "port" 8443 (.Values.config | default dict) | int -}}
{{- if eq $port 0 -}}
{{- fail "config.tekton.webhook.port: expected a fixed port (1-65535); the Service and the MutatingWebhookConfiguration need it" -}}
{{- end -}}
{{- if eq $port (include "gantry.httpPort" . | int) -}}
{{- fail (printf "config.tekton.webhook.port: %d is config.http.port too; the HTTPS admission server needs a port of its own" $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* The MutatingWebhookConfiguration (cluster-scoped), named after the release. */}}
{{- define "gantry.webhookConfigurationName" -}}{{ include "gantry.fullname" . }}{{- end -}}

{{/* The Secret with the webhook's certificate: config.tekton.webhook.tls.secretName, or <fullname>-webhook-tls. */}}
{{- define "gantry.webhookTlsSecret" -}}
{{- dig "tekton" "webhook" "tls" "secretName" (printf "%s-webhook-tls" (include "gantry.fullname" .)) (.Values.config | default dict) -}}
{{- end -}}

{{/* Whether cert-manager issues the webhook's certificate (tekton.webhook.certManager.enabled, default true). */}}
{{- define "gantry.certManagerEnabled" -}}
{{- if dig "webhook" "certManager" "enabled" true (.Values.tekton | default dict) -}}true{{- end -}}
{{- end -}}

{{/*
The namespaces whose PipelineRuns Gantry queues, as a namespaceSelector: config.tekton.namespaces, or
every namespace but kube-system and the release's. The webhook and the queue's admission policy share it.
*/}}
{{- define "gantry.tektonNamespaceSelector" -}}
{{- $namespaces := include "gantry.tektonNamespaces" . | fromJsonArray -}}
matchExpressions:
  {{- if $namespaces }}
  - key: kubernetes.io/metadata.name
    operator: In
    values:
      {{- toYaml $namespaces | nindent 6 }}
  {{- else }}
  # Every namespace but the system's and Gantry's own.
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml (list "kube-system" .Release.Namespace | uniq | sortAlpha) | nindent 6 }}
  {{- end }}
{{- end -}}

{{/* The user name Gantry's ServiceAccount authenticates as, for admission policies. */}}
{{- define "gantry.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "gantry.serviceAccountName" . }}
{{- end -}}

{{/* The Lease of leader election: config.election.leaseName, Gantry's default gantry-leader. */}}
{{- define "gantry.leaseName" -}}
{{- dig "election" "leaseName" "gantry-leader" (.Values.config | default dict) -}}
{{- end -}}

{{/* Whether some class sizes its warm pool from a queue-time objective (config.classes.*.warmPool). */}}
{{- define "gantry.warmPoolsEnabled" -}}
{{- range $name, $class := ((.Values.config | default dict).classes | default dict) -}}
{{- if get ($class | default dict) "warmPool" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap where warm pools' learned arrivals are kept: config.warmPools.configMap (Gantry's default name). */}}
{{- define "gantry.warmPoolConfigMap" -}}
{{- dig "warmPools" "configMap" "name" "gantry-warm-pools" (.Values.config | default dict) -}}
{{- end -}}

{{- define "gantry.warmPoolNamespace" -}}
{{- dig "warmPools" "configMap" "namespace" .Release.Namespace (.Values.config | default dict) -}}
{{- end -}}

{{/* Whether cert-manager's certificate is mounted into the pod: Tekton on, certManager on. */}}
{{- define "gantry.webhookTlsMounted" -}}
{{- if and (include "gantry.tektonEnabled" .) (include "gantry.certManagerEnabled" .) -}}true{{- end -}}
{{- end -}}

{{/* cert-manager's Certificate of the webhook (with tekton.webhook.certManager.enabled). */}}
{{- define "gantry.webhookCertificate" -}}{{ include "gantry.fullname" . }}-webhook{{- end -}}

{{/* Where cert-manager's Secret is mounted. */}}
{{- define "gantry.webhookTlsDir" -}}/etc/gantry/secrets/webhook-tls{{- end -}}

{{/*
config.tekton as the ConfigMap holds it (.tekton, as JSON): the names the chart's objects carry are
written in, so Gantry and its Service, Secret and MutatingWebhookConfiguration cannot drift apart.
Self-managed certificate: the Secret, Service and configuration names. cert-manager: the paths of
the mounted certificate (and its Secret's name, which Gantry then does not use).
*/}}
{{- define "gantry.tektonConfig" -}}
{{- $root := .root -}}
{{- $tekton := deepCopy .tekton -}}
{{- $webhook := get $tekton "webhook" | default dict -}}
{{- $tls := get $webhook "tls" | default dict -}}
{{- $_ := include "gantry.webhookPort" $root -}}
{{- range $key := list "serviceName" "webhookConfigurationName" -}}
{{- if hasKey $tls $key -}}
{{- fail (printf "config.tekton.webhook.tls.%s: leave it out; the chart sets it to the objects it creates (%s)" $key (include "gantry.fullname" $root)) -}}
{{- end -}}
{{- end -}}
{{- if include "gantry.certManagerEnabled" $root -}}
{{- range $key := list "certFile" "keyFile" "extraHosts" "validityDays" -}}
{{- if hasKey $tls $key -}}
{{- fail (printf "config.tekton.webhook.tls.%s: leave it out; with tekton.webhook.certManager.enabled cert-manager issues the certificate and the chart mounts it" $key) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $tls "certFile" (printf "%s/tls.crt" (include "gantry.webhookTlsDir" $root)) -}}
{{- $_ := set $tls "keyFile" (printf "%s/tls.key" (include "gantry.webhookTlsDir" $root)) -}}
{{- else -}}
{{- range $key := list "certFile" "keyFile" -}}
{{- if hasKey $tls $key -}}
{{- fail (printf "config.tekton.webhook.tls.%s: the chart mounts no certificate files; set tekton.webhook.certManager.enabled, or leave certFile and keyFile out and Gantry makes its own" $key) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $tls "serviceName" (include "gantry.fullname" $root) -}}
{{- $_ := set $tls "webhookConfigurationName" (include "gantry.webhookConfigurationName" $root) -}}
{{- end -}}
{{- $_ := set $tls "secretName" (include "gantry.webhookTlsSecret" $root) -}}
{{- $_ := set $webhook "tls" $tls -}}
{{- $_ := set $tekton "webhook" $webhook -}}
{{- toJson $tekton -}}
{{- end -}}

{{/* Gantry's rules on PipelineRuns. */}}
{{- define "gantry.pipelineRunRules" -}}
- apiGroups: [tekton.dev]
  resources: [pipelineruns]
  verbs: [get, list, watch, patch]
{{- end -}}
