package embedded

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// shutdownGrace is how long requests in flight may finish once Serve's
// context ends.
const shutdownGrace = 10 * time.Second

// Serve serves the registry on ln, and runs Run, until ctx ends; then it
// gives requests in flight 10 seconds and returns nil. An error of ln
// ends it early. Connections whose request headers take longer than
// Config.ReadHeaderTimeout, or idle for Config.IdleTimeout, are closed;
// there is no overall read or write timeout, since layers of several GB
// take their time (Config.MaxUploadSize bounds them). Serve logs one
// warning when ln is a TCP address beyond loopback: the registry has no
// authentication.
func (r *Registry) Serve(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		r.log.Warn("the embedded registry listens beyond loopback: whoever reaches it can push, pull and delete images (it has no authentication)", "addr", a.String())
	}
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: r.cfg.ReadHeaderTimeout,
		IdleTimeout:       r.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		r.Run(ctx)
	}()
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-shut
	<-ran
	return nil
}
