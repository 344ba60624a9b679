{{- /*
  Names and labels, as binderhub-service computes them, so that an existing
  binderhub-service release can be upgraded in place (Deployment and
  DaemonSet selectors are immutable) and label selectors in docs and
  policies keep matching. The default name is "binderhub-service", not the
  chart's name.
*/}}

{{- define "binderbuild.name" -}}
{{- .Values.nameOverride | default "binderhub-service" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /*
  Prefix of resource names: fullnameOverride when it is a string (default ""
  gives no prefix), else <release>-<name> (just <release> when it contains
  the name).
*/}}
{{- define "binderbuild.fullname" -}}
{{- if eq (typeOf .Values.fullnameOverride) "string" }}
{{- .Values.fullnameOverride }}
{{- else }}
{{- $name := include "binderbuild.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name }}
{{- else }}
{{- .Release.Name }}-{{ $name }}
{{- end }}
{{- end }}
{{- end }}

{{- define "binderbuild.fullname.dash" -}}
{{- with include "binderbuild.fullname" . }}{{ . }}-{{ end }}
{{- end }}

{{- define "binderbuild.binderhub.fullname" -}}
{{- include "binderbuild.fullname.dash" . }}binderhub
{{- end }}

{{- define "binderbuild.serviceaccount.fullname" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "binderbuild.binderhub.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "binderbuild.ingress.fullname" -}}
{{- include "binderbuild.fullname" . | default "binderhub" }}
{{- end }}

{{- define "binderbuild.docker-api.fullname" -}}
{{- include "binderbuild.fullname.dash" . }}docker-api
{{- end }}

{{- define "binderbuild.build-pods-docker-config.fullname" -}}
{{- include "binderbuild.fullname.dash" . }}build-pods-docker-config
{{- end }}

{{- define "binderbuild.gc.fullname" -}}
{{- include "binderbuild.fullname.dash" . }}binderhub-gc
{{- end }}

{{- define "binderbuild.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "binderbuild.appLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "binderbuild.appLabels" -}}
app.kubernetes.io/name: {{ include "binderbuild.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "binderbuild.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- /*
  The docker-api folders on the node, shared by the DaemonSet and the build
  pods: /var/lib/<namespace>-<release>/docker-api (data) and
  /var/run/<namespace>-<release>/docker-api (exec root and socket).
*/}}
{{- define "binderbuild.docker-api.dataDir" -}}
/var/lib/{{ .Release.Namespace }}-{{ .Release.Name }}/docker-api
{{- end }}

{{- define "binderbuild.docker-api.runDir" -}}
/var/run/{{ .Release.Namespace }}-{{ .Release.Name }}/docker-api
{{- end }}

{{- define "binderbuild.docker-api.socket" -}}
{{ include "binderbuild.docker-api.runDir" . }}/docker-api.sock
{{- end }}

{{- /* base_url with exactly one leading and one trailing slash. */}}
{{- define "binderbuild.baseURL" -}}
{{- $u := (include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml).base_url | default "/" | trimAll "/" }}
{{- if $u }}/{{ $u }}/{{ else }}/{{ end }}
{{- end }}

{{- /*
  binderbuild.otherBuildNamespace is the build namespace when it is not the
  release's (config.KubernetesBuildExecutor.namespace, or the deprecated
  config.BinderHub.build_namespace), else "": the Role and RoleBinding go
  where the build pods are.
*/}}
{{- define "binderbuild.otherBuildNamespace" -}}
{{- $bh := include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml }}
{{- $kbe := include "binderbuild.section" (list .Values.config "KubernetesBuildExecutor") | fromYaml }}
{{- $ns := coalesce (get $kbe "namespace") (get $bh "build_namespace") | default "" | toString }}
{{- if and $ns (ne $ns .Release.Namespace) }}
{{- $ns }}
{{- end }}
{{- end }}

{{- /*
  binderbuild.dockerApiTolerations are docker-api's tolerations: those every
  build pod has (builder/pod.go hubTolerations), so that no build pod lands
  on a node without docker-api, unless dockerApi.tolerations has one of the
  same key, then dockerApi.tolerations.
*/}}
{{- define "binderbuild.dockerApiTolerations" -}}
{{- $own := .Values.dockerApi.tolerations | default list }}
{{- $keys := list }}
{{- range $own }}
{{- $keys = append $keys .key }}
{{- end }}
{{- $all := list }}
{{- range $key := list "hub.jupyter.org/dedicated" "hub.jupyter.org_dedicated" }}
{{- if not (has $key $keys) }}
{{- $all = append $all (dict "key" $key "operator" "Equal" "value" "user" "effect" "NoSchedule") }}
{{- end }}
{{- end }}
{{- concat $all $own | toYaml }}
{{- end }}
