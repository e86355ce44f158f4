package httpapi

import (
	"net/http"
	"sync"
)

// serverGate is closed when an http.Server that served streams shuts down.
type serverGate struct {
	once sync.Once
	done chan struct{}
}

// serverGates tells a handler's streams when the http.Server serving them
// shuts down: http.Server.Shutdown does not end streaming requests, it
// waits for them, so a handler registers to be told, on the first stream
// request each server serves, and ends its streams itself. (A Shutdown that
// starts between a server's first stream request and that registration is
// not seen; the handler's Close still ends the stream.)
type serverGates struct {
	mu sync.Mutex
	m  map[*http.Server]*serverGate
}

// done returns a channel closed when the http.Server serving r starts
// shutting down (nil if r names none).
func (g *serverGates) done(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	g.mu.Lock()
	gate, known := g.m[srv]
	if !known {
		if g.m == nil {
			g.m = map[*http.Server]*serverGate{}
		}
		gate = &serverGate{done: make(chan struct{})}
		g.m[srv] = gate
	}
	g.mu.Unlock()
	if !known {
		srv.RegisterOnShutdown(func() {
			gate.once.Do(func() { close(gate.done) })
			g.mu.Lock()
			delete(g.m, srv) // a server that shut down serves no more streams
			g.mu.Unlock()
		})
	}
	return gate.done
}
