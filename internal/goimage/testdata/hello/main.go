// Command hello prints a greeting: the package of goimage's tests.
package main

import "fmt"

func main() { fmt.Println("hello from goimage") }
