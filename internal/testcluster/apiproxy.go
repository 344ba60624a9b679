//go:build linux

package testcluster

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// startAPIProxy serves kube-apiserver to the node's pods, which reach the
// host only at the bridge address while kube-apiserver listens on loopback:
// a reverse proxy on n.ip with a certificate of the cluster CA for that
// address. Requests keep their own credentials (a pod's service-account
// token), so the API server authenticates and authorises the pod.
func (n *Node) startAPIProxy(c *Cluster) error {
	cert, err := c.pki.servingCertificate(net.ParseIP(n.ip))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(n.ip, "0"))
	if err != nil {
		return err
	}
	target, err := url.Parse(c.APIServerURL())
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(c.pki.caPEM)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // watches and log streams
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	n.apiPort = l.Addr().(*net.TCPAddr).Port
	n.apiProxy = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.countRequest(r.RemoteAddr)
			proxy.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = n.apiProxy.ServeTLS(l, "", "") }()
	return nil
}

// InClusterAPIServer is where the node's pods reach kube-apiserver: give a
// pod KUBERNETES_SERVICE_HOST=host and KUBERNETES_SERVICE_PORT=port and
// client-go's in-cluster configuration works (the service IP the kubelet
// puts there has no proxy behind it).
func (n *Node) InClusterAPIServer() (host string, port int) { return n.ip, n.apiPort }

func (n *Node) countRequest(remoteAddr string) {
	ip, _, _ := net.SplitHostPort(remoteAddr)
	n.apiMu.Lock()
	defer n.apiMu.Unlock()
	if n.apiRequests == nil {
		n.apiRequests = make(map[string]int)
	}
	n.apiRequests[ip]++
}

// APIRequests counts the requests the pod with IP podIP sent to
// kube-apiserver (through InClusterAPIServer).
func (n *Node) APIRequests(podIP string) int {
	n.apiMu.Lock()
	defer n.apiMu.Unlock()
	return n.apiRequests[podIP]
}

func (n *Node) stopAPIProxy() {
	if n.apiProxy != nil {
		_ = n.apiProxy.Close()
	}
}
