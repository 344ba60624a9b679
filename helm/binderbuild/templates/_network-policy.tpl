{{- /*
  binderbuild.egressRules: the egress of build pods and docker-api pods. The
  internet, but not private ranges (cluster, node and VPC addresses) nor the
  cloud metadata service 169.254.169.254 (it hands out node credentials; the
  rest of 169.254.0.0/16 stays open for node-local DNS caches such as
  169.254.20.10); DNS to kube-dns; then networkPolicy.extraEgress.
*/}}
{{- define "binderbuild.egressRules" -}}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          - 10.0.0.0/8
          - 172.16.0.0/12
          - 192.168.0.0/16
          - 169.254.169.254/32
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          # Set on the DNS pods of every major distribution (kube-dns and CoreDNS).
          k8s-app: kube-dns
{{- with .Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}
