package binderbuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers is the package graph of STYLE.md §2 and the README's package map:
// the project packages each package's non-test code may import. Packages
// import down only: the domain (this package, events) and internal helpers
// at the bottom, one package per wrapped dependency above them, server
// consuming interfaces it declares, and cmd wiring everything. Every
// non-test package of the module must be listed, so a new one is placed
// here deliberately. Internal helpers that are not test helpers
// (internalHelper) may be imported by any package.
var layers = map[string][]string{
	"":                  {},
	"events":            {},
	"web":               {},
	"helm":              {},
	"builder":           {"", "events"},
	"launcher":          {""},
	"repoproviders":     {""},
	"registry":          {""},
	"registry/gc":       {"registry"},
	"registry/embedded": {},
	"upgrades":          {""},
	"auth":              {},
	"server":            {"", "events", "auth"},
	"cmd/binderbuild": {"", "events", "auth", "builder", "launcher", "repoproviders", "registry", "registry/gc",
		"registry/embedded", "server", "upgrades", "web"},
}

// testHelpers are the internal packages that start real servers or fake
// remote APIs for tests: only tests (and other test helpers) import them.
var testHelpers = []string{"internal/fakearchive", "internal/fakehub", "internal/metricstest", "internal/testcluster", "internal/testdocker",
	"internal/testgit", "internal/testgithub", "internal/testhub", "internal/testlog", "internal/testregistry"}

const module = "github.com/binderbuild/binderbuild"

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// TestPackageGraph checks every package's imports against layers.
func TestPackageGraph(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := relative(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if err := allowed(rel, relative(imp)); err != nil {
				t.Errorf("%s imports %s: %v", p.ImportPath, imp, err)
			}
		}
	}
}

// allowed reports why package from may not import to, nil when it may.
func allowed(from, to string) error {
	switch {
	case slices.Contains(testHelpers, to) && !slices.Contains(testHelpers, from):
		return errors.New("test helpers are for tests only")
	case slices.Contains(testHelpers, from) || internalHelper(to):
		return nil
	case internalHelper(from):
		return errors.New("internal helpers import no other project package")
	}
	deps, ok := layers[from]
	if !ok {
		return errors.New("the importing package has no place in the package graph (layers in deps_test.go)")
	}
	if !slices.Contains(deps, to) {
		return errors.New("against the package graph: packages import down only (STYLE.md §2)")
	}
	return nil
}

// internalHelper tells an internal package shared by non-test code, such
// as internal/flight.
func internalHelper(rel string) bool {
	return strings.HasPrefix(rel, "internal/") && !slices.Contains(testHelpers, rel)
}

func relative(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

// listPackages is `go list -json ./...` of the module.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(layers) {
		t.Fatalf("go list found %d packages, want at least the %d of the graph", len(pkgs), len(layers))
	}
	return pkgs
}

// TestPackageMapListsEveryPackage checks that the README's package map
// (its Layout section) names every package of the module, so that a new
// package gets its line.
func TestPackageMapListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	for _, p := range listPackages(t) {
		if rel := relative(p.ImportPath); rel != "" && !strings.Contains(layout, "`"+rel+"`") {
			t.Errorf("README.md's Layout does not name `%s`", rel)
		}
	}
}

// TestPackageGraphRules checks the rules themselves on the imports they
// must refuse.
func TestPackageGraphRules(t *testing.T) {
	tests := []struct {
		from, to string
		ok       bool
	}{
		{"server", "events", true},
		{"server", "internal/flight", true},
		{"server", "builder", false},
		{"server", "registry", false},
		{"server", "repoproviders", false},
		{"builder", "server", false},
		{"registry/gc", "registry", true},
		{"registry", "registry/gc", false},
		{"events", "", false},
		{"", "events", false},
		{"builder", "internal/testcluster", false},
		{"internal/testgithub", "internal/testgit", true},
		{"internal/wait", "events", false},
		{"newpkg", "", false},
		{"cmd/binderbuild", "server", true},
	}
	for _, tc := range tests {
		if err := allowed(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("allowed(%q, %q) = %v, want ok %v", tc.from, tc.to, err, tc.ok)
		}
	}
}
