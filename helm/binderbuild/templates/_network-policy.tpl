{{- /*
  binderbuild.egressRules: the egress of build pods and docker-api pods. The
  internet, but not the IPv4 ranges the service itself refuses to reach on a
  user's behalf: private ranges (cluster, node and VPC addresses), CGNAT
  (some clouds' pods and services), loopback, reserved, documentation,
  benchmarking and multicast ranges, and the cloud metadata service
  169.254.169.254 (it hands out node credentials; the rest of 169.254.0.0/16
  stays open for node-local DNS caches such as 169.254.20.10). No IPv6
  egress: whoever adds ::/0 through extraEgress must except fc00::/7,
  fe80::/10, ::ffff:0:0/96 and 64:ff9b::/96. DNS to kube-dns; then
  networkPolicy.extraEgress.
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
          - 0.0.0.0/8
          - 100.64.0.0/10
          - 127.0.0.0/8
          - 192.0.0.0/24
          - 192.0.2.0/24
          - 198.18.0.0/15
          - 198.51.100.0/24
          - 203.0.113.0/24
          - 224.0.0.0/4
          - 240.0.0.0/4
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
