// Package systemtest drives votewatch end to end: real PostgreSQL, the
// in-process Kafka broker, the system wired by internal/app as every
// command wires it, and the votewatch binary itself (built once per test
// binary by testutil.Binary) where a test runs a command.
package systemtest
