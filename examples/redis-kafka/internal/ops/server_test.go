package ops_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/examples/redis-kafka/internal/ops"
)

func TestServerSetsEveryTimeLimit(t *testing.T) {
	srv := ops.Server(http.NotFoundHandler())
	assert.Equal(t, 5*time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 10*time.Second, srv.ReadTimeout)
	assert.Equal(t, 30*time.Second, srv.WriteTimeout)
	assert.Equal(t, 60*time.Second, srv.IdleTimeout)
}

// closedWithin sends what over a connection of its own to addr, then
// keeps sending a byte every second (a trickle) if trickle is set, and
// returns how long after what the server closed the connection.
func closedWithin(t *testing.T, addr, what string, trickle bool) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, what)
	require.NoError(t, err)
	start := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for trickle {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second))) // a guard only
	_, err = io.Copy(io.Discard, conn)
	took := time.Since(start)
	close(stop)
	<-stopped
	if !errors.Is(err, syscall.ECONNRESET) { // a reset closes it too
		require.NoError(t, err, "the server closes the connection")
	}
	return took
}

// A client that stalls in its headers, or sends its headers and trickles
// its body (a byte a second of 4,000, without credentials: the /login
// shape), loses its connection at ReadHeaderTimeout (5 s) or ReadTimeout
// (10 s) of the example's servers, whatever the handler does.
func TestServerCutsSlowClients(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // a handler that reads every body, as a form login does
		w.WriteHeader(http.StatusUnauthorized)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := ops.Server(h)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { // after the parallel subtests
		require.NoError(t, srv.Close())
		<-served
	})
	addr := ln.Addr().String()

	for _, tc := range []struct {
		name, what string
		trickle    bool
		limit      time.Duration
	}{
		{"stalled headers", "GET / HTTP/1.1\r\nHost: test\r\n", false, srv.ReadHeaderTimeout},
		{"trickled body", "POST /login HTTP/1.1\r\nHost: test\r\nContent-Length: 4000\r\n\r\n", true, srv.ReadTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			took := closedWithin(t, addr, tc.what, tc.trickle)
			t.Logf("%s: connection closed after %v", tc.name, took.Round(10*time.Millisecond))
			assert.Less(t, took, tc.limit+2*time.Second)
			assert.Greater(t, took, tc.limit-time.Second)
		})
	}
}
