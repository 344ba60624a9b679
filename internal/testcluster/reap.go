//go:build linux

package testcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// nodeRecords holds one file per running real node, named by its id and
// holding the test process's pid and the node's folder, so that the next
// AddRealNode can remove what a killed test process left behind (its pods'
// processes, shims, cgroups, bridge and folder); Stop removes the file.
const nodeRecords = "/run/testcluster-nodes"

// record writes the node's record.
func (n *Node) record() error {
	if err := os.MkdirAll(nodeRecords, 0o755); err != nil {
		return err
	}
	data := strconv.Itoa(os.Getpid()) + "\n" + n.dir + "\n"
	return os.WriteFile(filepath.Join(nodeRecords, n.id), []byte(data), 0o644)
}

func (n *Node) unrecord() {
	_ = os.Remove(filepath.Join(nodeRecords, n.id))
}

// reapOrphans cleans up after the real nodes whose test process is gone.
func reapOrphans() error {
	entries, err := os.ReadDir(nodeRecords)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(nodeRecords, e.Name()))
		if err != nil {
			continue // removed by its owner meanwhile
		}
		pidText, dir, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		pid, err := strconv.Atoi(pidText)
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive, or not ours to judge
		}
		n := newNode(e.Name(), "", dir)
		killCgroup(n.cgroup)
		killShims(n.socket)
		errs = append(errs, removeCgroups(n.cgroup), n.removeBridge(), os.RemoveAll(dir))
		n.unrecord()
	}
	return errors.Join(errs...)
}
