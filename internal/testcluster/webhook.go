//go:build linux

package testcluster

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// StartWebhook serves handler over HTTPS on loopback, where kube-apiserver
// reaches it, with a certificate of the cluster CA, and returns the URL and
// the CA bundle of an admission webhook's clientConfig. It stops at the end
// of the test.
func (c *Cluster) StartWebhook(t testing.TB, handler http.Handler) (url string, caBundle []byte) {
	t.Helper()
	cert, err := c.pki.servingCertificate(net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(handler)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.URL, c.pki.caPEM
}
