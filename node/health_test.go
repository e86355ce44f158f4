package node_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/health"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/node"
)

// pingingTransport is the in-memory transport with a Ping, standing in for
// *kafkadispatch.Dispatcher.
type pingingTransport struct {
	*dispatch.Memory
	err error
}

func (p pingingTransport) Ping(context.Context) error { return p.err }

// pingingQueue is a memory Queue with a Ping; it is the Agenda too.
type pingingQueue struct{ *memline.Queue }

func (pingingQueue) Ping(context.Context) error { return nil }

func TestHealthChecks(t *testing.T) {
	campaigns, err := memline.NewRegistry()
	require.NoError(t, err)

	t.Run("in-memory backends have nothing to check", func(t *testing.T) {
		n, err := node.New(node.Config{Catalog: campaigns})
		require.NoError(t, err)
		assert.Empty(t, n.HealthChecks())
	})

	t.Run("backends with a Ping, each checked once", func(t *testing.T) {
		transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
		require.NoError(t, err)
		tr := pingingTransport{Memory: transport, err: errors.New("broker down")}
		q := pingingQueue{memline.NewQueue(nil)}
		n, err := node.New(node.Config{Catalog: campaigns, Queue: q, Locker: lock.NewMemory(),
			Dispatcher: tr, Consumer: tr, Store: memory.NewStore()})
		require.NoError(t, err)
		checks := n.HealthChecks()
		assert.ElementsMatch(t, []string{"queue", "dispatcher"}, keys(checks),
			"the queue is the agenda too and the transport the consumer too: one check each")
		assert.NoError(t, checks["queue"](context.Background()))
		assert.EqualError(t, checks["dispatcher"](context.Background()), "broker down")

		checks["redis"] = func(context.Context) error { return nil } // the host's own
		h, err := health.New(health.Config{Checks: checks})
		require.NoError(t, err)
		rr := httptest.NewRecorder()
		h.Readiness().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
		assert.JSONEq(t, `{"status":"unavailable","checks":{"dispatcher":"broker down","queue":"ok","redis":"ok"}}`, rr.Body.String())
	})
}

func keys(m map[string]health.Check) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
