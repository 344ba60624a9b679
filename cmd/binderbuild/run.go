package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/internal/batchwriter"
)

// envPrefix prefixes every setting. BINDERHUB_ would collide with the
// variables Kubernetes injects for a Service named binderhub.
const envPrefix = "BINDERBUILD"

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `Usage: binderbuild <command> [flags]

Commands:
  serve     run the build service (settings come from BINDERBUILD_* variables; see serve --help)
  build     build an image with a running service and print its name (see build --help)
  gc        delete old images from the registry to keep it within budget (see gc --help)
  upgrades  open pull requests that keep a deployment's images and charts current (see upgrades --help)
  version   print the version
`

// run is the whole program: main only adds signals and exit codes. lookup
// reads the environment (os.LookupEnv).
func run(ctx context.Context, args []string, lookup lookupFunc, stdout, stderr io.Writer) error {
	getenv := func(k string) string { v, _ := lookup(k); return v }
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"binderbuild: no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], lookup, stdout, stderr)
	case "gc":
		return gcCommand(ctx, args[1:], lookup, stdout, stderr)
	case "build":
		return buildCommand(ctx, args[1:], getenv, stdout, stderr)
	case "upgrades":
		return upgradesCommand(ctx, args[1:], lookup, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("binderbuild: unknown command %q", args[0])}
	}
}

func serve(ctx context.Context, args []string, lookup lookupFunc, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: binderbuild serve\n\nRuns the build service. Settings come from the environment:")
		writeSettings(stdout, envPrefix, &config{})
		fmt.Fprintln(stdout, "\nRegistry retention runs in the service when BINDERBUILD_GC_SCHEDULE is set; its\nBINDERBUILD_GC_* settings are listed by `binderbuild gc --help`.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return err
	}
	cfg.stdout = stdout // the stdout event sink
	// Log lines are batched: under load, one system call writes many of
	// them (one per request would cost as much as the request).
	logOut := batchwriter.New(stderr, 0)
	defer logOut.Close()
	// Every log line, the standard library's too, loses tokens and URL
	// credentials.
	log := slog.New(cfg.redactor().Handler(newLogger(logOut, cfg.LogLevel).Handler()))
	cfg.accessLog = logOut // the same lines, without a slog record each
	slog.SetDefault(log)
	logUnusedSettings(log, cfg, os.Environ())

	// Builds and event streams live on base, which ends before Shutdown so
	// that open streams do not hold it up.
	base, stopBase := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBase()
	app, err := wire(base, cfg, func(k string) string { v, _ := lookup(k); return v }, log)
	if err != nil {
		return err
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (BINDERBUILD_LISTEN): %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           app.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "base_url", cfg.Config.BaseURL, "version", version())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	stopBase()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated in loadConfig
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// version is the module version stamped by the Go toolchain, or "dev".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "dev"
	}
	return strings.TrimPrefix(info.Main.Version, "v")
}
