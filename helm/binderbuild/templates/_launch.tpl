{{- /*
  Launch mode (config.BinderHub.enable_api_only_mode: false): binderbuild
  serves BinderHub's pages and starts servers on JupyterHub. The hub is
  wired as binderhub's own chart wires it: its public URL (hub_url), the URL
  this service reaches it at (hub_url_local, or JUPYTERHUB_API_URL), and the
  API token of the hub's service "binder", read from the z2jh hub's Secret.
*/}}

{{- /* binderbuild.launchMode is "true" when enable_api_only_mode is false. */}}
{{- define "binderbuild.launchMode" -}}
{{- $v := get (include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml) "enable_api_only_mode" }}
{{- if and (kindIs "bool" $v) (not $v) }}true{{ end }}
{{- end }}

{{- /* binderbuild.extraEnvNames lists the names extraEnv gives (YAML). */}}
{{- define "binderbuild.extraEnvNames" -}}
{{- $names := list }}
{{- range $e := .Values.extraEnv | default list }}
{{- if kindIs "map" $e }}
{{- $names = append $names (toString $e.name) }}
{{- end }}
{{- end }}
{{- toYaml $names }}
{{- end }}

{{- /*
  binderbuild.launchSettings renders the launch settings as a YAML map of
  variable name to string value, like binderbuild.settings (which includes
  it); empty in API-only mode.
*/}}
{{- define "binderbuild.launchSettings" -}}
{{- $env := dict }}
{{- if include "binderbuild.launchMode" . }}
{{- $cfg := .Values.config | default dict }}
{{- $bh := include "binderbuild.section" (list $cfg "BinderHub") | fromYaml }}
{{- $launcher := include "binderbuild.section" (list $cfg "Launcher") | fromYaml }}
{{- $extraEnv := include "binderbuild.extraEnvNames" . | fromYamlArray }}
{{- range $name, $key := dict "BINDERBUILD_HUB_URL" "hub_url" "BINDERBUILD_HUB_URL_LOCAL" "hub_url_local" "BINDERBUILD_BADGE_BASE_URL" "badge_base_url" "BINDERBUILD_BANNER_MESSAGE" "banner_message" "BINDERBUILD_ABOUT_MESSAGE" "about_message" }}
{{- with get $bh $key }}
{{- $_ := set $env $name (toString .) }}
{{- end }}
{{- end }}
{{- /* As binderhub's chart: with authentication, the hub API for tokens. */}}
{{- if and (eq (toString (get $bh "auth_enabled")) "true") (not (has "JUPYTERHUB_API_URL" $extraEnv)) }}
{{- with coalesce (get $bh "hub_url_local") (get $bh "hub_url") }}
{{- $_ := set $env "JUPYTERHUB_API_URL" (printf "%s/hub/api/" (trimSuffix "/" (toString .))) }}
{{- end }}
{{- end }}
{{- $quota := get $bh "pod_quota" }}
{{- if not (or (kindIs "float64" $quota) (kindIs "int64" $quota)) }}
{{- $quota = get (include "binderbuild.section" (list $cfg "LaunchQuota") | fromYaml) "total_quota" }}
{{- end }}
{{- range $name, $v := dict "BINDERBUILD_POD_QUOTA" $quota "BINDERBUILD_PER_REPO_QUOTA" (get $bh "per_repo_quota") "BINDERBUILD_PER_REPO_QUOTA_HIGHER" (get $bh "per_repo_quota_higher") "BINDERBUILD_RETRIES" (get $launcher "retries") "BINDERBUILD_NAMED_SERVER_LIMIT_PER_USER" (get $launcher "named_server_limit_per_user") }}
{{- if or (kindIs "float64" $v) (kindIs "int64" $v) }}
{{- $_ := set $env $name (toString (int64 $v)) }}
{{- end }}
{{- end }}
{{- range $name, $v := dict "BINDERBUILD_RETRY_DELAY" (get $launcher "retry_delay") "BINDERBUILD_LAUNCH_TIMEOUT" (get $launcher "launch_timeout") }}
{{- if or (kindIs "float64" $v) (kindIs "int64" $v) }}
{{- $_ := set $env $name (printf "%dms" (mulf $v 1000 | int64)) }}
{{- end }}
{{- end }}
{{- if kindIs "bool" (get $launcher "allow_named_servers") }}
{{- $_ := set $env "BINDERBUILD_ALLOW_NAMED_SERVERS" (toString (get $launcher "allow_named_servers")) }}
{{- end }}
{{- with get (include "binderbuild.section" (list $cfg "KubernetesLaunchQuota") | fromYaml) "namespace" }}
{{- $_ := set $env "BINDERBUILD_QUOTA_NAMESPACE" (toString .) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{- /*
  binderbuild.hubTokenEnv is the server's hub API token in launch mode, as
  env entries (YAML list): hub_api_token from the chart's Secret, else, as
  binderhub's chart, the token z2jh generates for the hub service "binder"
  (hub.services.binder in the jupyterhub chart's values) in the hub's Secret
  "hub", unless extraEnv gives JUPYTERHUB_API_TOKEN or the token itself.
  Arguments: the root context.
*/}}
{{- define "binderbuild.hubTokenEnv" -}}
{{- $out := list }}
{{- if include "binderbuild.launchMode" . }}
{{- $extraEnv := include "binderbuild.extraEnvNames" . | fromYamlArray }}
{{- if (include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml).hub_api_token }}
{{- $out = append $out (dict "name" "BINDERBUILD_HUB_API_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" (include "binderbuild.binderhub.fullname" .) "key" "hub-api-token"))) }}
{{- else if not (or (has "JUPYTERHUB_API_TOKEN" $extraEnv) (has "BINDERBUILD_HUB_API_TOKEN" $extraEnv)) }}
{{- $out = append $out (dict "name" "JUPYTERHUB_API_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" "hub" "key" "hub.services.binder.apiToken"))) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{- /* binderbuild.launchRefusals lists what launch mode cannot run without (YAML). */}}
{{- define "binderbuild.launchRefusals" -}}
{{- $out := list }}
{{- if and (include "binderbuild.launchMode" .) (not (include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml).hub_url) }}
{{- $out = append $out (printf "%sconfig.BinderHub.hub_url: not set, but config.BinderHub.enable_api_only_mode is false (launch mode): set it to the public URL of the JupyterHub that runs the servers, e.g. https://hub.example.org/, or set enable_api_only_mode to true to build only" (include "binderbuild.keyPrefix" .)) }}
{{- end }}
{{- toYaml $out }}
{{- end }}
