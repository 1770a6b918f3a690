//go:build !soak

package main

// soakMode is false in a plain `go test`: the fault tests run their short
// versions. Build with -tags soak for the long ones.
const soakMode = false
