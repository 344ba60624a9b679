{{- /*
  dockerApi.extraFiles, rendered as binderhub-service does: binaryData goes
  to the Secret's data; stringData verbatim; data is rendered by the
  mountPath's extension (.yaml/.yml, .json, .toml).
*/}}

{{- define "binderbuild.extraFiles.validate" -}}
{{- $key := index . 0 }}
{{- $file := index . 1 }}
{{- if not $file.mountPath }}
{{- fail (printf "\n\ndockerApi.extraFiles.%s must contain the field mountPath." $key) }}
{{- end }}
{{- $count := 0 }}
{{- range $field := list "data" "stringData" "binaryData" }}
{{- if get $file $field }}
{{- $count = add1 $count }}
{{- end }}
{{- end }}
{{- if ne (int $count) 1 }}
{{- fail (printf "\n\ndockerApi.extraFiles.%s must contain exactly one of the fields data, stringData and binaryData." $key) }}
{{- end }}
{{- end }}

{{- define "binderbuild.extraFiles.data" -}}
{{- $out := dict }}
{{- range $key, $file := . }}
{{- include "binderbuild.extraFiles.validate" (list $key $file) }}
{{- with $file.binaryData }}
{{- $_ := set $out $key (nospace .) }}
{{- end }}
{{- end }}
{{- if $out }}{{ toYaml $out }}{{ end }}
{{- end }}

{{- define "binderbuild.extraFiles.stringData" -}}
{{- $out := dict }}
{{- range $key, $file := . }}
{{- include "binderbuild.extraFiles.validate" (list $key $file) }}
{{- with $file.stringData }}
{{- $_ := set $out $key . }}
{{- end }}
{{- with $file.data }}
{{- $ext := ext $file.mountPath }}
{{- if or (eq $ext ".yaml") (eq $ext ".yml") }}
{{- $_ := set $out $key (toYaml .) }}
{{- else if eq $ext ".json" }}
{{- $_ := set $out $key (toJson .) }}
{{- else if eq $ext ".toml" }}
{{- $_ := set $out $key (toToml .) }}
{{- else }}
{{- fail (printf "\n\ndockerApi.extraFiles.%s: entries with data need a mountPath ending in .yaml, .yml, .json or .toml, not %s." $key $file.mountPath) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $out }}{{ toYaml $out }}{{ end }}
{{- end }}
