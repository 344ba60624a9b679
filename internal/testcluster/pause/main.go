//go:build linux

// Command pause is the sandbox ("pause") container of the test cluster's real
// node: it holds a pod's namespaces until it is stopped, and reaps orphans
// when it is the pod's PID 1. internal/testcluster builds it into an image
// and imports that into containerd, so no pause image is ever pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
