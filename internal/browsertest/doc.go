// Package browsertest tests the admin handler's live page
// (node.Node.AdminHandler, {BasePath}/live) in a real headless Chromium,
// against a running in-memory node. It is a module of its own, so chromedp
// stays out of the core module's requirements; it has no code but its test.
//
// Run it from this directory:
//
//	go test -race -count=1 ./...                                     # screenshot in a temporary directory
//	go test -count=1 -run TestLivePage . -args -screenshot ../../docs/live-page.png
//
// It needs Debian's chromium on PATH (scripts/chromium.sh installs it).
// Without it the test skips, unless the environment variable CI is set:
// then it fails.
package browsertest
