// Command crosscheck type-checks the module's packages for other operating
// systems: crosscheck darwin windows. It reads every package, dependencies
// and standard library included, from source with CGO_ENABLED=0, as a
// release build sees them, and fails on the first GOOS with an error.
//
// Type-checking finds what a cross build finds in code like this module's
// (an identifier missing on that OS, a build constraint that drops or
// doubles a file) in seconds, where compiling client-go and its
// dependencies once per OS takes minutes on a cold cache. `make release`
// still compiles and links the binaries.
package main

import (
	"fmt"
	"os"

	"golang.org/x/tools/go/packages"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck GOOS...")
		os.Exit(2)
	}
	for _, goos := range os.Args[1:] {
		if err := check(goos); err != nil {
			fmt.Fprintf(os.Stderr, "crosscheck %s: %v\n", goos, err)
			os.Exit(1)
		}
	}
}

// check type-checks ./... for goos.
func check(goos string) error {
	cfg := &packages.Config{
		Mode: packages.LoadAllSyntax,
		Env:  append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0"),
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		return err
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		return fmt.Errorf("%d errors", n)
	}
	return nil
}
