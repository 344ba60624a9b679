{{- /*
  binderbuild.buildPodsDockerConfig is the docker client config.json the
  build pods push with, as binderhub-service builds it: registry credentials
  from buildPodsRegistryCredentials (unless config.BinderHub.use_registry is
  false: BinderHub's default is true, and binderhub-service's "only when
  set to true" dropped them while the server pushed; and unless no server
  or username is given), then buildPodsDockerConfig merged in (the
  credentials win on conflicts). Pretty-printed JSON.
*/}}
{{- define "binderbuild.buildPodsDockerConfig" -}}
{{- $dockerConfig := dict }}
{{- $bh := include "binderbuild.section" (list .Values.config "BinderHub") | fromYaml }}
{{- $c := .Values.buildPodsRegistryCredentials }}
{{- /* Without a server and a username there is nothing to log in with:
  an entry for "" with auth ":" (binderhub-service writes one) makes Docker
  and go-containerregistry refuse the whole file. */}}
{{- if and (ne (toString $bh.use_registry) "false") $c.server $c.username }}
{{- $blob := printf "%s:%s" $c.username $c.password | b64enc }}
{{- $dockerConfig = merge $dockerConfig (dict "auths" (dict $c.server (dict "auth" $blob))) }}
{{- end }}
{{- with .Values.buildPodsDockerConfig }}
{{- $dockerConfig = merge $dockerConfig (deepCopy .) }}
{{- end }}
{{- toPrettyJson $dockerConfig }}
{{- end }}

{{- /*
  binderbuild.serverDockerConfig is the docker config the server checks the
  registry with (DOCKER_CONFIG): the build pods' config, so that check and
  push use the same credentials, with config.DockerRegistry.{url,username,
  password} added for the url's registry when given.
*/}}
{{- define "binderbuild.serverDockerConfig" -}}
{{- $dockerConfig := include "binderbuild.buildPodsDockerConfig" . | fromJson }}
{{- $reg := include "binderbuild.section" (list .Values.config "DockerRegistry") | fromYaml }}
{{- if and $reg.url $reg.username }}
{{- $blob := printf "%s:%s" $reg.username ($reg.password | default "") | b64enc }}
{{- $auths := get $dockerConfig "auths" | default dict }}
{{- $_ := set $auths $reg.url (dict "auth" $blob) }}
{{- $_ := set $dockerConfig "auths" $auths }}
{{- end }}
{{- toPrettyJson $dockerConfig }}
{{- end }}
