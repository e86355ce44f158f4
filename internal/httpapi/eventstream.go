package httpapi

import (
	"errors"
	"net/http"
	"time"
)

// openEventStream answers the headers of a Server-Sent Events stream (the
// live page's and a user's status stream) and reports whether the caller
// goes on to write events: not for a HEAD request.
func openEventStream(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on as they come
	w.WriteHeader(http.StatusOK)
	return r.Method != http.MethodHead
}

// eventWriter writes an event stream's chunks, each flushed at once and
// under a write deadline, so a client that stops reading cannot hold its
// stream (and its slot) forever. Between writes the stream has no write
// deadline: the first write replaces the http.Server's WriteTimeout, which
// would otherwise cut the stream, and on HTTP/2 a deadline that passes
// resets the stream even while nothing is being written, so one left in
// place after a write would end a stream quiet for longer than the
// timeout (a heartbeat interval is longer).
type eventWriter struct {
	rc      *http.ResponseController
	w       http.ResponseWriter
	timeout time.Duration
}

func newEventWriter(w http.ResponseWriter, timeout time.Duration) eventWriter {
	return eventWriter{rc: http.NewResponseController(w), w: w, timeout: timeout}
}

func (e eventWriter) write(chunk []byte) error {
	if err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := e.w.Write(chunk); err != nil {
		return err
	}
	if err := e.rc.Flush(); err != nil {
		return err
	}
	if err := e.rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// comment writes an SSE comment, which EventSource ignores (heartbeats).
func (e eventWriter) comment(text string) error { return e.write([]byte(": " + text + "\n\n")) }

// done clears the write deadline: the connection may serve other requests.
func (e eventWriter) done() { _ = e.rc.SetWriteDeadline(time.Time{}) }
