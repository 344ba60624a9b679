package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/server"
)

// newExecutor returns the build executor, its health checks and the
// Kubernetes client (nil without a cluster): the local executor with
// BINDERBUILD_EXECUTOR=local, or with auto when there is no cluster.
func newExecutor(ctx context.Context, cfg config, getenv func(string) string, log *slog.Logger) (builder.Executor, []server.HealthCheck, kubernetes.Interface, error) {
	if cfg.Executor == "local" {
		exec, health, err := newLocalExecutor(ctx, cfg, getenv, log)
		return exec, health, nil, err
	}
	client, _, err := kubeClient(getenv, "", false, cfg.kubeTransport)
	if errors.Is(err, errNoCluster) && cfg.Executor == "auto" {
		log.Info("no Kubernetes cluster: using the local executor", "reason", err.Error())
		exec, health, err := newLocalExecutor(ctx, cfg, getenv, log)
		return exec, health, nil, err
	}
	if err != nil {
		return nil, nil, nil, err
	}
	kube, err := builder.NewKube(client, cfg.KubeConfig, log)
	if err != nil {
		return nil, nil, nil, err
	}
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := kube.Start(ctx, syncCtx); err != nil {
		return nil, nil, nil, err
	}
	check := server.HealthCheck{Service: "Kubernetes API", Check: func(ctx context.Context) error {
		_, err := client.CoreV1().Pods(cfg.BuildNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	}}
	return kube, []server.HealthCheck{check}, client, nil
}
