// Package helm holds the binderbuild Helm chart (helm/binderbuild), a
// drop-in replacement for 2i2c's binderhub-service chart, and its tests:
// helm lint, renders compared with golden files under
// helm/binderbuild/testdata (regenerate with `go test ./helm -update`),
// assertions on the rendered objects, and, on a real kube-apiserver from
// internal/testcluster, creation of every rendered manifest, `helm install`,
// and `binderbuild serve` run with the chart's environment, whose build pod
// must carry docker-api's node selector and socket and the configured
// ephemeral storage.
//
// The tests run the helm binary built by `make helm-bin`
// (tools/helm/helm.mk) from $BINDERBUILD_TEST_BIN or <repo root>/.cache/bin.
package helm
