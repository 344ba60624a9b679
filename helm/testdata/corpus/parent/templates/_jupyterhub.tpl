{{- /*
  basehub's jupyterhub dependency defines this template, and 2i2c's hub
  values name the hub's Secret with it (tpl-rendered extraEnv); with the
  z2jh chart's default fullnameOverride "" it is "hub".
*/}}
{{- define "jupyterhub.hub.fullname" -}}hub{{- end }}
