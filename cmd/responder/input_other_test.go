//go:build !unix

package main

import "testing"

// addSpecialFiles adds nothing where there are no FIFOs nor device files.
func addSpecialFiles(*testing.T, string, map[string]struct{ file, stderr string }) {}
