//go:build race

// Package race says whether the program was built with the race detector,
// so that tests build the binaries they start the same way and reuse the
// packages already compiled for them.
package race

// Enabled is true: built with -race.
const Enabled = true
