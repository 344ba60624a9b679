package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/registry/embedded"
	"github.com/binderbuild/binderbuild/server"
)

// defaultEngineHost is the engine address when DOCKER_HOST is unset.
const defaultEngineHost = "unix:///var/run/docker.sock"

// embeddedRepo is the repository folder of images in the embedded registry.
const embeddedRepo = "binderbuild/"

// LocalSettings holds the single-machine settings: the local executor's and
// the embedded registry's.
type LocalSettings struct {
	builder.LocalConfig
	EmbeddedRegistryListen string `split_words:"true" default:"127.0.0.1:5000" desc:"address of the embedded registry, used when BINDERBUILD_IMAGE_PREFIX is empty; the engine pushes to it, so keep it on 127.0.0.1 (Docker trusts loopback registries over HTTP)"`
	DataDir                string `split_words:"true" desc:"writable folder of the embedded registry's images, kept across restarts (default: $XDG_DATA_HOME/binderbuild, else $HOME/.local/share/binderbuild)"`
	// EmbeddedRegistry holds BINDERBUILD_EMBEDDED_REGISTRY_* limits.
	EmbeddedRegistry embedded.Config `split_words:"true"`
}

// defaultDataDir is $XDG_DATA_HOME/binderbuild, else the XDG default
// $HOME/.local/share/binderbuild, else ./.data.
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "binderbuild")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "binderbuild")
	}
	return ".data"
}

// startEmbeddedRegistry serves the embedded registry when no image prefix
// is configured and the registry is used, and points cfg at it: images are
// named <listen host:port>/binderbuild/<slug>:<ref> and builds push. The
// registry stops when ctx ends; the returned wait blocks until it has.
func startEmbeddedRegistry(ctx context.Context, cfg *config, log *slog.Logger) (wait func(), err error) {
	if cfg.ImagePrefix != "" || !cfg.UseRegistry {
		return func() {}, nil
	}
	dir := filepath.Join(cfg.DataDir, "registry")
	rlog := log.With("component", "embedded-registry")
	reg, err := embedded.Open(dir, cfg.EmbeddedRegistry, rlog)
	if err != nil {
		return nil, fmt.Errorf("embedded registry (BINDERBUILD_DATA_DIR=%s): %w", cfg.DataDir, err)
	}
	ln, err := net.Listen("tcp", cfg.EmbeddedRegistryListen)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: listen on %s (BINDERBUILD_EMBEDDED_REGISTRY_LISTEN): %w", cfg.EmbeddedRegistryListen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	cfg.ImagePrefix = net.JoinHostPort(host, fmt.Sprint(addr.Port)) + "/" + embeddedRepo
	cfg.Push = true
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := reg.Serve(ctx, ln); err != nil {
			rlog.Error("embedded registry stopped", "error", err)
		}
	}()
	log.Info("embedded registry", "addr", ln.Addr().String(), "dir", dir, "image_prefix", cfg.ImagePrefix)
	return func() { <-stopped }, nil
}

// newLocalExecutor returns the local executor on the engine at DOCKER_HOST
// (default unix:///var/run/docker.sock) and its health check. The engine
// need not run yet: builds fail with what is missing until it does.
func newLocalExecutor(ctx context.Context, cfg config, getenv func(string) string, log *slog.Logger) (builder.Executor, []server.HealthCheck, error) {
	lc := cfg.LocalConfig
	lc.Build = cfg.KubeConfig
	lc.EngineHost = getenv("DOCKER_HOST")
	if lc.EngineHost == "" {
		lc.EngineHost = defaultEngineHost
	}
	engine, err := client.New(client.WithHost(lc.EngineHost),
		client.WithUserAgent("binderbuild/"+version()))
	if err != nil {
		return nil, nil, fmt.Errorf("container engine client (DOCKER_HOST=%s): %w", lc.EngineHost, err)
	}
	local, err := builder.NewLocal(engine, lc, log)
	if err != nil {
		return nil, nil, err
	}
	local.Start(ctx)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := local.Check(cctx); err != nil {
		log.Warn("builds will fail until a container engine answers", "engine", lc.EngineHost, "reason", err.Error())
	} else {
		log.Info("building with the local container engine", "engine", lc.EngineHost, "build_image", lc.Build.BuildImage)
	}
	// Optional: without an engine, cache hits still work.
	return local, []server.HealthCheck{{Service: "Container engine", Check: local.Check, Optional: true}}, nil
}
