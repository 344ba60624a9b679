{{- /*
  Translation of the binderhub-service values (BinderHub traitlet names under
  config.<Class>.<trait>) into the BINDERBUILD_* environment of
  `binderbuild serve`. The server reads only its environment.

  binderbuild.settings renders a YAML map of variable name to string value;
  secrets are not in it (they are secretKeyRefs, see binderbuild.secretEnv).
  Unusable values fail the render with a message naming the key.
*/}}

{{- define "binderbuild.section" -}}
{{- $cfg := index . 0 | default dict }}
{{- get $cfg (index . 1) | default dict | toYaml }}
{{- end }}

{{- /*
  binderbuild.quantity renders a BinderHub ByteSpecification (bytes as an
  integer, or a number with a K, M, G or T suffix meaning powers of 1024) as
  a Kubernetes quantity: 2G -> 2Gi, 1073741824 -> 1073741824. Kubernetes
  quantities (2Gi, 500M) pass unchanged. Arguments: (list key value).
*/}}
{{- define "binderbuild.quantity" -}}
{{- $key := index . 0 }}
{{- $v := index . 1 }}
{{- if kindIs "float64" $v }}
{{- $v | int64 }}
{{- else if kindIs "int64" $v }}
{{- $v }}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?[KMGT]$" $v }}
{{- $v }}i
{{- else if regexMatch "^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$" $v }}
{{- $v }}
{{- else }}
{{- fail (printf "\n\n%s: %q is neither a byte size (1073741824, 512M, 2G) nor a Kubernetes quantity (2Gi)" $key $v) }}
{{- end }}
{{- end }}

{{- /*
  binderbuild.kvList renders a map as k:v,k:v with sorted keys, the format
  binderbuild reads maps in. Arguments: (list key map).
*/}}
{{- define "binderbuild.kvList" -}}
{{- $key := index . 0 }}
{{- $m := index . 1 }}
{{- $items := list }}
{{- range $k := keys $m | sortAlpha }}
{{- $val := get $m $k | toString }}
{{- if or (contains ":" $k) (contains "," $k) (contains ":" $val) (contains "," $val) }}
{{- fail (printf "\n\n%s: %q: %q cannot be passed to binderbuild, which reads this map as k:v,k:v (no : or , in keys or values; IPv6 networks are not supported)" $key $k $val) }}
{{- end }}
{{- $items = append $items (printf "%s:%s" $k $val) }}
{{- end }}
{{- join "," $items }}
{{- end }}

{{- /* binderbuild.banList renders ban_networks as cidr=label,cidr=label (IPv6
  networks contain ":"). Arguments: (list key map). */}}
{{- define "binderbuild.banList" -}}
{{- $key := index . 0 }}
{{- $m := index . 1 }}
{{- $items := list }}
{{- range $k := keys $m | sortAlpha }}
{{- $val := get $m $k | toString }}
{{- if or (contains "=" $k) (contains "," $k) (contains "=" $val) (contains "," $val) }}
{{- fail (printf "\n\n%s: %q: %q cannot be passed to binderbuild, which reads this map as cidr=label,cidr=label (no = or , in networks or labels)" $key $k $val) }}
{{- end }}
{{- $items = append $items (printf "%s=%s" $k $val) }}
{{- end }}
{{- join "," $items }}
{{- end }}

{{- /* binderbuild.commaList joins a list with ",". Arguments: (list key list). */}}
{{- define "binderbuild.commaList" -}}
{{- $key := index . 0 }}
{{- range $item := index . 1 }}
{{- if contains "," (toString $item) }}
{{- fail (printf "\n\n%s: %q cannot be passed to binderbuild, which reads this list comma-separated" $key (toString $item)) }}
{{- end }}
{{- end }}
{{- index . 1 | join "," }}
{{- end }}

{{- /*
  binderbuild.buildNodeSelector is the build pods' node selector as a YAML
  map: config.KubernetesBuildExecutor.node_selector, else the deprecated
  config.BinderHub.build_node_selector, else dockerApi.nodeSelector, so that
  build pods land on nodes running docker-api.
*/}}
{{- define "binderbuild.buildNodeSelector" -}}
{{- $bh := include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml }}
{{- $kbe := include "binderbuild.section" (list .Values.config "KubernetesBuildExecutor") | fromYaml }}
{{- $selectors := list }}
{{- range $s := list (get $kbe "node_selector") (get $bh "build_node_selector") .Values.dockerApi.nodeSelector }}
{{- $selectors = append $selectors (include "binderbuild.withoutNulls" $s | fromYaml) }}
{{- end }}
{{- coalesce (index $selectors 0) (index $selectors 1) (index $selectors 2) dict | toYaml }}
{{- end }}

{{- /*
  binderbuild.withoutNulls is a map without its null entries (YAML): a null
  label is Helm's way to delete a parent chart's default, and Helm leaves
  some in place (user values merged over subchart values).
*/}}
{{- define "binderbuild.withoutNulls" -}}
{{- $out := dict }}
{{- range $k, $v := . | default dict }}
{{- if not (kindIs "invalid" $v) }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{- define "binderbuild.settings" -}}
{{- $cfg := .Values.config | default dict }}
{{- $bh := include "binderbuild.section" (list $cfg "BinderHub") | fromYaml }}
{{- $kbe := include "binderbuild.section" (list $cfg "KubernetesBuildExecutor") | fromYaml }}
{{- $cleaner := include "binderbuild.section" (list $cfg "KubernetesCleaner") | fromYaml }}
{{- $reg := include "binderbuild.section" (list $cfg "DockerRegistry") | fromYaml }}
{{- $rl := include "binderbuild.section" (list $cfg "RateLimiter") | fromYaml }}
{{- $gh := include "binderbuild.section" (list $cfg "GitHubRepoProvider") | fromYaml }}
{{- $gl := include "binderbuild.section" (list $cfg "GitLabRepoProvider") | fromYaml }}
{{- $env := dict }}

{{- /* Server */}}
{{- $_ := set $env "BINDERBUILD_LISTEN" (printf ":%d" (get $bh "port" | default 8585 | int)) }}
{{- $_ := set $env "BINDERBUILD_BASE_URL" (include "binderbuild.baseURL" .) }}
{{- if kindIs "bool" (get $bh "enable_api_only_mode") }}
{{- $_ := set $env "BINDERBUILD_API_ONLY" (toString (get $bh "enable_api_only_mode")) }}
{{- end }}
{{- $_ := set $env "BINDERBUILD_AUTH" (ternary "jupyterhub" "none" (eq (toString (get $bh "auth_enabled")) "true")) }}
{{- with get $bh "cors_allow_origin" }}
{{- $_ := set $env "BINDERBUILD_CORS_ALLOW_ORIGIN" (toString .) }}
{{- end }}
{{- with get $bh "ban_networks" }}
{{- $_ := set $env "BINDERBUILD_BAN_NETWORKS" (include "binderbuild.banList" (list "config.BinderHub.ban_networks" .)) }}
{{- end }}
{{- if eq (toString (get $bh "debug")) "true" }}
{{- $_ := set $env "BINDERBUILD_LOG_LEVEL" "debug" }}
{{- end }}
{{- with get $bh "log_level" }}
{{- $levels := dict "DEBUG" "debug" "10" "debug" "INFO" "info" "20" "info" "WARN" "warn" "WARNING" "warn" "30" "warn" "ERROR" "error" "40" "error" "CRITICAL" "error" "50" "error" }}
{{- $l := upper (toString .) }}
{{- if not (hasKey $levels $l) }}
{{- fail (printf "\n\nconfig.BinderHub.log_level: %q: want DEBUG, INFO, WARNING or ERROR" (toString .)) }}
{{- end }}
{{- $_ := set $env "BINDERBUILD_LOG_LEVEL" (get $levels $l) }}
{{- end }}
{{- with get $rl "limit" }}
{{- $_ := set $env "BINDERBUILD_RATE_LIMIT" (toString (int64 .)) }}
{{- end }}
{{- with get $rl "period_seconds" }}
{{- $_ := set $env "BINDERBUILD_RATE_LIMIT_PERIOD" (printf "%ds" (int64 .)) }}
{{- end }}

{{- /* Registry */}}
{{- with get $bh "image_prefix" }}
{{- $_ := set $env "BINDERBUILD_IMAGE_PREFIX" (toString .) }}
{{- end }}
{{- if kindIs "bool" (get $bh "use_registry") }}
{{- $_ := set $env "BINDERBUILD_USE_REGISTRY" (toString (get $bh "use_registry")) }}
{{- end }}
{{- with get $reg "url" }}
{{- $u := urlParse (toString .) }}
{{- if eq $u.scheme "http" }}
{{- $_ := set $env "BINDERBUILD_REGISTRY_INSECURE_HOSTS" $u.host }}
{{- end }}
{{- end }}

{{- /* Repository providers */}}
{{- with get $gh "hostname" }}
{{- $_ := set $env "BINDERBUILD_GITHUB_HOSTNAME" (toString .) }}
{{- end }}
{{- /* BinderHub's default api_base_path is https://api.{hostname}. */}}
{{- with coalesce (get $gh "api_base_path") (get $gh "api_base_url") (and (get $gh "hostname") "https://api.{hostname}") }}
{{- $api := toString . | replace "{hostname}" (get $gh "hostname" | default "github.com" | toString) }}
{{- $_ := set $env "BINDERBUILD_GITHUB_API_URL" (trimSuffix "/" $api) }}
{{- end }}
{{- with get $gh "client_id" }}
{{- $_ := set $env "BINDERBUILD_GITHUB_CLIENT_ID" (toString .) }}
{{- end }}
{{- with get (include "binderbuild.section" (list $cfg "GitRepoProvider") | fromYaml) "allowed_protocols" }}
{{- $_ := set $env "BINDERBUILD_GIT_ALLOWED_SCHEMES" (include "binderbuild.commaList" (list "config.GitRepoProvider.allowed_protocols" .)) }}
{{- end }}
{{- with get $bh "repo_providers" }}
{{- $_ := set $env "BINDERBUILD_REPO_PROVIDERS" (include "binderbuild.commaList" (list "config.BinderHub.repo_providers" (keys . | sortAlpha))) }}
{{- end }}
{{- range $name, $list := include "binderbuild.specLists" . | fromYaml }}
{{- $_ := set $env $name $list }}
{{- end }}
{{- with get $gl "hostname" }}
{{- $_ := set $env "BINDERBUILD_GITLAB_URL" (printf "https://%s" .) }}
{{- end }}

{{- /* Build pods */}}
{{- $_ := set $env "BINDERBUILD_EXECUTOR" "kubernetes" }}
{{- $_ := set $env "BINDERBUILD_DOCKER_HOST" (coalesce (get $kbe "docker_host") (get $bh "build_docker_host") (include "binderbuild.docker-api.socket" .)) }}
{{- with coalesce (get $kbe "push_secret") (get $bh "push_secret") }}
{{- $_ := set $env "BINDERBUILD_PUSH_SECRET" . }}
{{- end }}
{{- with coalesce (get $kbe "namespace") (get $bh "build_namespace") }}
{{- $_ := set $env "BINDERBUILD_BUILD_NAMESPACE" . }}
{{- end }}
{{- with coalesce (get $kbe "build_image") (get $bh "build_image") }}
{{- $_ := set $env "BINDERBUILD_BUILD_IMAGE" . }}
{{- end }}
{{- with include "binderbuild.buildNodeSelector" . | fromYaml }}
{{- $_ := set $env "BINDERBUILD_BUILD_NODE_SELECTOR" (include "binderbuild.kvList" (list "the build pods' node selector (config.KubernetesBuildExecutor.node_selector or dockerApi.nodeSelector)" .)) }}
{{- end }}
{{- range $name, $keys := dict "BINDERBUILD_BUILD_MEMORY_REQUEST" (list "memory_request" "build_memory_request") "BINDERBUILD_BUILD_MEMORY_LIMIT" (list "memory_limit" "build_memory_limit") }}
{{- if get $kbe (index $keys 0) }}
{{- $_ := set $env $name (include "binderbuild.quantity" (list (printf "config.KubernetesBuildExecutor.%s" (index $keys 0)) (get $kbe (index $keys 0)))) }}
{{- else if get $bh (index $keys 1) }}
{{- $_ := set $env $name (include "binderbuild.quantity" (list (printf "config.BinderHub.%s" (index $keys 1)) (get $bh (index $keys 1)))) }}
{{- end }}
{{- end }}
{{- with get $kbe "resources" }}
{{- $_ := set $env "BINDERBUILD_BUILD_RESOURCES" (toJson .) }}
{{- end }}
{{- with get $kbe "extra_envs" }}
{{- $vars := dict }}
{{- range $k, $v := . }}
{{- $_ := set $vars $k (toString $v) }}
{{- end }}
{{- $_ := set $env "BINDERBUILD_BUILD_EXTRA_ENV" (toJson $vars) }}
{{- end }}
{{- with coalesce (get $kbe "appendix") (get $bh "appendix") }}
{{- $_ := set $env "BINDERBUILD_BUILD_APPENDIX" (toString .) }}
{{- end }}
{{- with .Values.buildPods.timeout }}
{{- $_ := set $env "BINDERBUILD_BUILD_TIMEOUT" (toString .) }}
{{- end }}
{{- with .Values.buildPods.ephemeralStorage.request }}
{{- $_ := set $env "BINDERBUILD_BUILD_EPHEMERAL_STORAGE_REQUEST" (toString .) }}
{{- end }}
{{- with .Values.buildPods.ephemeralStorage.limit }}
{{- $_ := set $env "BINDERBUILD_BUILD_EPHEMERAL_STORAGE_LIMIT" (toString .) }}
{{- end }}
{{- if not (kindIs "invalid" .Values.buildPods.perClientLimit) }}
{{- $_ := set $env "BINDERBUILD_PER_CLIENT_BUILD_LIMIT" (toString .Values.buildPods.perClientLimit) }}
{{- end }}
{{- with get $kbe "image_pull_secrets" }}
{{- $_ := set $env "BINDERBUILD_BUILD_IMAGE_PULL_SECRETS" (include "binderbuild.commaList" (list "config.KubernetesBuildExecutor.image_pull_secrets" .)) }}
{{- end }}
{{- with get $kbe "repo2docker_extra_args" }}
{{- $_ := set $env "BINDERBUILD_REPO2DOCKER_EXTRA_ARGS" (include "binderbuild.commaList" (list "config.KubernetesBuildExecutor.repo2docker_extra_args" .)) }}
{{- end }}
{{- range $section := list $bh $kbe }}
{{- if kindIs "bool" (get $section "sticky_builds") }}
{{- $_ := set $env "BINDERBUILD_STICKY_BUILDS" (toString (get $section "sticky_builds")) }}
{{- end }}
{{- end }}
{{- if kindIs "bool" (get $bh "build_token_check_origin") }}
{{- $_ := set $env "BINDERBUILD_BUILD_TOKEN_CHECK_ORIGIN" (toString (get $bh "build_token_check_origin")) }}
{{- end }}
{{- with get $bh "concurrent_build_limit" }}
{{- $_ := set $env "BINDERBUILD_CONCURRENT_BUILD_LIMIT" (toString (int64 .)) }}
{{- end }}
{{- range $v := list (get $bh "build_max_age") (get $cleaner "max_age") }}
{{- if kindIs "float64" $v }}
{{- $_ := set $env "BINDERBUILD_BUILD_MAX_AGE" (printf "%ds" (int64 $v)) }}
{{- end }}
{{- end }}
{{- range $name, $value := include "binderbuild.launchSettings" . | fromYaml }}
{{- $_ := set $env $name $value }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{- /*
  binderbuild.validate fails the render for values binderbuild cannot honour,
  listing every refusal (binderbuild.refusals, from keys.yaml) at once. The
  schema refuses unknown Python snippets too; this also catches
  --skip-schema-validation.
*/}}
{{- define "binderbuild.validate" -}}
{{- $refusals := concat (include "binderbuild.refusals" . | fromYamlArray) (include "binderbuild.launchRefusals" . | fromYamlArray) }}
{{- $bh := include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml }}
{{- $prefix := include "binderbuild.keyPrefix" . }}
{{- if and (ne (toString $bh.use_registry) "false") (not $bh.image_prefix) }}
{{- $refusals = append $refusals (printf "%sconfig.BinderHub.image_prefix: not set, but config.BinderHub.use_registry is true (BinderHub's default): set image_prefix to where built images are pushed (e.g. quay.io/<org>/binder-), or use_registry: false to build without a registry" $prefix) }}
{{- end }}
{{- with $refusals }}
{{- fail (printf "\n\nbinderbuild cannot honour these values (see Migrating from binderhub-service in the chart README):\n- %s" (join "\n- " .)) }}
{{- end }}
{{- if and .Values.gc.enabled (not (include "binderbuild.settings" . | fromYaml).BINDERBUILD_IMAGE_PREFIX) }}
{{- fail "\n\ngc.enabled: registry garbage collection needs config.BinderHub.image_prefix (the images it may delete)" }}
{{- end }}
{{- end }}

{{- /*
  binderbuild.specLists translates allowed_specs, banned_specs and
  high_quota_specs of RepoProvider and its subclasses into the server's
  comma lists of patterns, which apply to every provider's specs. Allowed
  specs may come from one class only: joined, two classes would allow each
  other's specs. A comma in a pattern is refused unless the server can tell
  it belongs to the pattern ({m,n} or [...]).
*/}}
{{- define "binderbuild.specLists" -}}
{{- $prefix := include "binderbuild.keyPrefix" . }}
{{- $lists := dict "allowed_specs" "BINDERBUILD_ALLOWED_SPECS" "banned_specs" "BINDERBUILD_BANNED_SPECS" "high_quota_specs" "BINDERBUILD_HIGH_QUOTA_SPECS" }}
{{- $classes := list "RepoProvider" "GitHubRepoProvider" "GitLabRepoProvider" "GitRepoProvider" "GistRepoProvider" "ZenodoProvider" "FigshareProvider" "HydroshareProvider" "DataverseProvider" "CKANProvider" }}
{{- $env := dict }}
{{- range $trait, $name := $lists }}
{{- $patterns := list }}
{{- $from := list }}
{{- range $class := $classes }}
{{- with get (include "binderbuild.section" (list $.Values.config $class) | fromYaml) $trait }}
{{- $from = append $from (printf "%sconfig.%s.%s" $prefix $class $trait) }}
{{- range $p := . }}
{{- if contains "," (regexReplaceAll "\\[[^\\]]*\\]|\\{[0-9]*,[0-9]*\\}" (toString $p) "") }}
{{- fail (printf "\n\n%s: %q: write a comma outside {m,n} and [...] as \\x2c (binderbuild reads these patterns comma-separated)" (last $from) (toString $p)) }}
{{- end }}
{{- $patterns = append $patterns (toString $p) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $trait "allowed_specs") (gt (len $from) 1) }}
{{- fail (printf "\n\n%s: binderbuild applies allowed specs to every provider, so they may be set on one class only; merge them into %sconfig.RepoProvider.allowed_specs" (join ", " $from) $prefix) }}
{{- end }}
{{- with $patterns }}
{{- $_ := set $env $name (join "," .) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}
