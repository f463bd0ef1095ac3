// Package archtest holds no code, only the test that keeps the layout rules
// of README.md ("How the code is laid out") and ARCHITECTURE.md true: which
// package may import which, that only responder/cloud builds AWS clients,
// that every AWS operation the code declares is in the operation registry,
// and that steps never refer to each other.
package archtest
