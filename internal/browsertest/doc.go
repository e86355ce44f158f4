// Package browsertest tests couponq's pages in a real headless Chromium:
// the admin handler's live page ({BasePath}/live, against a running
// in-memory node), and the public handler's waiting room
// ({BasePath}/campaigns/{id}/wait, on the in-memory line, which the test
// moves itself). The waiting room is checked in each of its 16 states at a
// desktop (light) and a phone (dark) viewport, and in Korean, with
// axe-core run inside the page (no serious or critical violation allowed);
// followed live from the join button to the outcome through a dropped
// connection and a stream a proxy refuses (the page falls back to
// polling); and used with script disabled (the form and the page's own
// refresh). It is a module of its own, so chromedp stays out of the core
// module's requirements; it has no code but its tests.
//
// Run it from this directory:
//
//	go test -race -count=1 -v ./...                                  # screenshots in temporary directories
//	go test -count=1 -run TestLivePage . -args -screenshot ../../docs/live-page.png
//	go test -count=1 -run TestWaitingRoomStates . -args -screenshots ../../docs/waiting-room
//
// It needs Debian's chromium on PATH (scripts/chromium.sh installs it, with
// a Korean font) and axe-core (scripts/axe.sh fetches it from npm; the
// tests read $COUPONQ_AXE_JS, else ../../.cache/axe/). Without either the
// tests skip, unless the environment variable CI is set: then they fail.
package browsertest
