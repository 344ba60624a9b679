{{- /*
  The refusals of keys.yaml: every refused key that is set, every
  config.<Class>.<trait> the table lacks and every unknown extraConfig
  snippet becomes one line of the render's error, so an operator sees all
  the keys to change at once. Messages name keys as the operator writes
  them: with the parent chart's key (the alias) in front in a subchart.
*/}}

{{- /* binderbuild.keyPrefix is "<alias>." in a subchart, else "". */}}
{{- define "binderbuild.keyPrefix" -}}
{{- if contains "/charts/" .Template.BasePath }}{{ .Chart.Name }}.{{ end }}
{{- end }}

{{- /*
  binderbuild.lookup finds a dotted path in a map: {"v": value}, with value
  null when a part is missing. Arguments: (list map path).
*/}}
{{- define "binderbuild.lookup" -}}
{{- $v := index . 0 }}
{{- $found := true }}
{{- range $k := splitList "." (index . 1) }}
{{- if and $found (kindIs "map" $v) }}
{{- if hasKey $v $k }}
{{- $v = get $v $k }}
{{- else }}
{{- $found = false }}
{{- end }}
{{- else }}
{{- $found = false }}
{{- end }}
{{- end }}
{{- if $found }}{{ toJson (dict "v" $v) }}{{ else }}{"v":null}{{ end }}
{{- end }}

{{- /* binderbuild.isSet is "true" for any value but null, "", {} and []. */}}
{{- define "binderbuild.isSet" -}}
{{- if not (kindIs "invalid" .) }}
{{- if or (kindIs "bool" .) (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}true
{{- else if . }}true
{{- end }}
{{- end }}
{{- end }}

{{- /* binderbuild.refused is "true" when row refuses value. Arguments: (list values row value). */}}
{{- define "binderbuild.refused" -}}
{{- $values := index . 0 }}
{{- $row := index . 1 }}
{{- $v := index . 2 }}
{{- $cond := $row.refuse | toString }}
{{- if and (eq $row.action "refused") (kindIs "invalid" $row.refuse) }}{{ $cond = "set" }}{{ end }}
{{- $with := true }}
{{- with $row.with }}
{{- $parts := splitList "=" . }}
{{- $other := (include "binderbuild.lookup" (list $values (first $parts)) | fromJson).v }}
{{- if eq (len $parts) 2 }}
{{- $with = and (not (kindIs "invalid" $other)) (eq (toString $other) (last $parts)) }}
{{- else }}
{{- $with = include "binderbuild.isSet" $other }}
{{- end }}
{{- end }}
{{- if $with }}
{{- if eq $cond "set" }}{{ include "binderbuild.isSet" $v }}
{{- else if eq $cond "true" }}{{ and (kindIs "bool" $v) $v | ternary "true" "" }}
{{- else if eq $cond "false" }}{{ and (kindIs "bool" $v) (not $v) | ternary "true" "" }}
{{- else if eq $cond "match" }}{{ and (kindIs "string" $v) (regexMatch $row.pattern (toString $v)) | ternary "true" "" }}
{{- end }}
{{- end }}
{{- end }}

{{- /* binderbuild.refusals lists the render's refusals (YAML list of strings). */}}
{{- define "binderbuild.refusals" -}}
{{- $rows := .Files.Get "keys.yaml" | fromYamlArray }}
{{- $prefix := include "binderbuild.keyPrefix" . }}
{{- $known := dict }}
{{- $out := list }}
{{- range $row := $rows }}
{{- range $key := $row.keys }}
{{- $_ := set $known $key $row }}
{{- if and (ne $key "extraConfig") (not $row.sha256) }}
{{- $v := (include "binderbuild.lookup" (list $.Values $key) | fromJson).v }}
{{- if include "binderbuild.refused" (list $.Values $row $v) }}
{{- $out = append $out (printf "%s%s: %s" $prefix $key ($row.refusal | default $row.note)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $class, $traits := .Values.config | default dict }}
{{- if and (kindIs "map" $traits) (not (hasKey $known (printf "config.%s" $class))) }}
{{- range $trait, $v := $traits }}
{{- $key := printf "config.%s.%s" $class $trait }}
{{- if and (not (kindIs "invalid" $v)) (not (hasKey $known $key)) }}
{{- $out = append $out (printf "%s%s: not a BinderHub setting binderbuild knows; remove it (the chart README lists every setting binderbuild honours)" $prefix $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $snippet := .Values.extraConfig | default dict }}
{{- if $snippet }}
{{- $row := get $known (printf "extraConfig.%s" $name) | default dict }}
{{- if ne (toString $row.sha256) (trim (toString $snippet) | sha256sum) }}
{{- $out = append $out (printf "%sextraConfig.%s: %s" $prefix $name (get $known "extraConfig").note) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
