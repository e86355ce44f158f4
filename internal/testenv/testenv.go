// Package testenv reads the addresses of the servers the project's scripts
// start. Without one a test skips, except under CI (CI set), where it fails:
// an integration test never silently skips in CI.
package testenv

import (
	"os"
	"testing"
)

// Need returns the environment variable name, or skips the test (fails it
// under CI) with a hint saying which script starts the server.
func Need(t testing.TB, name, script string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with `make test` (%s starts the server)", name, script)
		}
		t.Skipf("%s not set; `make test` starts the server (%s)", name, script)
	}
	return v
}
