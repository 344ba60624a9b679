package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// errNoCluster means neither an in-cluster config nor KUBECONFIG was found.
var errNoCluster = errors.New("no Kubernetes cluster configured: not running in a cluster and KUBECONFIG is not set")

// kubeClient is how every command reaches Kubernetes: the kubeconfig file
// given (gc's --kubeconfig), else the files of $KUBECONFIG, else
// ~/.kube/config when home is set (gc only: the service without a cluster
// builds locally instead), else in-cluster credentials. It returns the
// client and the namespace of the config's context (in a cluster: the
// pod's own), errNoCluster when nothing names a cluster. wrap, when set,
// wraps the client's transport (request metrics).
func kubeClient(getenv func(string) string, file string, home bool, wrap func(http.RoundTripper) http.RoundTripper) (kubernetes.Interface, string, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: file}
	env := getenv("KUBECONFIG")
	switch {
	case env != "":
		rules.Precedence = filepath.SplitList(env)
	case home:
		rules.Precedence = []string{clientcmd.RecommendedHomeFile}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err) && env != "":
		return nil, "", fmt.Errorf("kubernetes client config: KUBECONFIG=%q names no cluster", env)
	case clientcmd.IsEmptyConfig(err):
		return nil, "", errNoCluster
	case err != nil:
		return nil, "", fmt.Errorf("kubernetes client config: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes namespace: %w", err)
	}
	cfg.UserAgent = "binderbuild/" + version()
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, ns, nil
}
