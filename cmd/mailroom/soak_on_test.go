//go:build soak

package main

// soakMode is true under `go test -tags soak`: the fault tests run their
// long versions (docs/reliability.md).
const soakMode = true
