//go:build linux

package testcluster

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts returns the mount points of the machine's cgroup hierarchies
// (v1 controllers and, on hybrid machines, the unified v2 one), and which of
// them are v1.
func cgroupMounts() (all, v1 []string, err error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// <id> <parent> <dev> <root> <mount point> <options> ... - <fstype> ...
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
			continue
		}
		switch f[sep+1] {
		case "cgroup":
			all, v1 = append(all, f[4]), append(v1, f[4])
		case "cgroup2":
			all = append(all, f[4])
		}
	}
	return all, v1, sc.Err()
}

// setupCgroups creates the node's cgroup root in every v1 hierarchy (the
// kubelet requires it to exist), with the cpuset of the machine.
func (n *Node) setupCgroups() error {
	_, v1, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range v1 {
		dir := filepath.Join(m, n.cgroup)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			val, err := os.ReadFile(filepath.Join(m, f))
			if errors.Is(err, fs.ErrNotExist) {
				continue // not the cpuset hierarchy
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// killCgroup SIGKILLs every process in cgroup root (and below) of every
// hierarchy until none is left, for at most ten seconds.
func killCgroup(root string) {
	all, _, err := cgroupMounts()
	if err != nil {
		return
	}
	for range 200 {
		killed := 0
		for _, m := range all {
			_ = filepath.WalkDir(filepath.Join(m, root), func(path string, d fs.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				for _, pid := range readPids(filepath.Join(path, "cgroup.procs")) {
					if syscall.Kill(pid, syscall.SIGKILL) == nil {
						killed++
					}
				}
				return nil
			})
		}
		if killed == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readPids(file string) []int {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroups removes cgroup root and everything below it from every
// hierarchy, deepest first, retrying while exiting processes still hold a
// cgroup.
func removeCgroups(root string) error {
	all, _, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range all {
		errs = append(errs, removeTree(filepath.Join(m, root)))
	}
	return errors.Join(errs...)
}

func removeTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		err := os.Remove(dirs[i])
		for try := 0; errors.Is(err, syscall.EBUSY) && try < 100; try++ {
			time.Sleep(50 * time.Millisecond)
			err = os.Remove(dirs[i])
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// killShims SIGKILLs the containerd shims that serve the containerd
// listening on socket: they run in their own process groups and outlive
// containerd.
func killShims(socket string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.Contains(args[0], "containerd-shim") && hasArg(args, "-address", socket) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// hasArg reports whether args contain flag followed by value.
func hasArg(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}
