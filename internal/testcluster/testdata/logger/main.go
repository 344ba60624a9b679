// Command logger prints its arguments, one a line, to stdout and exits with
// status 0: the container of the real-node tests in internal/testcluster.
package main

import (
	"fmt"
	"os"
)

func main() {
	for _, a := range os.Args[1:] {
		fmt.Println(a)
	}
}
