package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/node"
)

// fault is a Ping the test controls: it fails with its error while one is
// set.
type fault struct{ err atomic.Pointer[error] }

func (f *fault) set(err error) { f.err.Store(&err) }

func (f *fault) Ping(context.Context) error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// pingingStore is the in-memory Store with a Ping, standing in for pgstore's.
type pingingStore struct {
	*memory.Store
	*fault
}

// pingingTransport is the in-memory transport with a Ping, standing in for
// kafkadispatch's.
type pingingTransport struct {
	*dispatch.Memory
	*fault
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func probe(t *testing.T, h http.Handler) (int, readiness) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
	var r readiness
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &r), rr.Body.String())
	return rr.Code, r
}

// Readiness checks the Backend, the Store and the Transport the node was
// given, and the host's own checks, with no host code for the backends.
func TestReadinessCoversEveryBackend(t *testing.T) {
	backend, store, transport, host := &fault{}, &fault{}, &fault{}, &fault{}
	for _, f := range []*fault{backend, store, transport, host} {
		f.set(errors.New("down"))
	}
	b := memory.New()
	b.Name, b.Ping = "kv", backend.Ping
	tr, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	require.NoError(t, err)
	n := startNode(t, node.Config{
		Backend:         b,
		Store:           pingingStore{memory.NewStore(), store},
		Transport:       pingingTransport{tr, transport},
		ReadinessChecks: map[string]func(context.Context) error{"cache": host.Ping},
	})
	ready := n.Readiness()

	code, r := probe(t, ready)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, readiness{Status: "unavailable", Checks: map[string]string{
		"kv": "down", "store": "down", "transport": "down", "cache": "down",
	}}, r)

	store.set(nil)
	host.set(nil)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, r := probe(t, ready)
		assert.Equal(c, http.StatusServiceUnavailable, code)
		assert.Equal(c, map[string]string{"kv": "down", "store": "ok", "transport": "down", "cache": "ok"}, r.Checks)
	}, 5*time.Second, 50*time.Millisecond, "each check is named on its own")

	backend.set(nil)
	transport.set(nil)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, r := probe(t, ready)
		assert.Equal(c, http.StatusOK, code)
		assert.Equal(c, readiness{Status: "ok", Checks: map[string]string{
			"kv": "ok", "store": "ok", "transport": "ok", "cache": "ok",
		}}, r)
	}, 5*time.Second, 50*time.Millisecond, "ready once every backend answers")
}

// A Backend without a Name is checked as "backend"; the in-memory parts
// have nothing to check.
func TestReadinessNames(t *testing.T) {
	b := memory.New()
	b.Name, b.Ping = "", func(context.Context) error { return errors.New("no route") }
	n, err := node.New(node.Config{Backend: b, Store: memory.NewStore()})
	require.NoError(t, err)
	code, r := probe(t, n.Readiness())
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, map[string]string{"backend": "no route"}, r.Checks)

	inMemory, err := node.New(node.Config{})
	require.NoError(t, err)
	code, r = probe(t, inMemory.Readiness())
	assert.Equal(t, http.StatusOK, code)
	assert.Empty(t, r.Checks)

	rr := httptest.NewRecorder()
	inMemory.Liveness().ServeHTTP(rr, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/livez", nil))
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rr.Body.String())
}
