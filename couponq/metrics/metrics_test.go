package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

var _ node.Observer = (*metrics.Expvar)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var published atomic.Int64

// newExpvar publishes an Expvar under a name no other run of the test took
// (expvar names live as long as the process: go test -count=N).
func newExpvar(t *testing.T) *metrics.Expvar {
	return metrics.NewExpvar(fmt.Sprintf("%s_%d", t.Name(), published.Add(1)))
}

func TestExpvarCounts(t *testing.T) {
	m := newExpvar(t)
	n, err := node.New(node.Config{Observer: m}) // not started: only admissions
	require.NoError(t, err)
	ctx := context.Background()
	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: "c", Stock: 1})
	require.NoError(t, err)
	_, _ = n.Admit(ctx, couponq.Request{Campaign: "c", User: "a"})
	_, _ = n.Admit(ctx, couponq.Request{Campaign: "c", User: "a"})
	_, _ = n.Admit(ctx, couponq.Request{Campaign: "c", User: "bad id"})
	m.OnAdmit(couponq.AdmitEvent{Err: fmt.Errorf("%w: x", couponq.ErrUnavailable)})
	m.OnAdmit(couponq.AdmitEvent{LockWait: 3 * time.Millisecond})
	m.OnTick(dispatch.TickEvent{Leased: 10, Failed: 2, Err: errors.New("x")})
	m.OnIssue(issuer.Event{Result: couponq.Result{State: couponq.StateIssued}})
	m.OnIssue(issuer.Event{Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.CodeSoldOut}})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 12, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 11, Stock: 10}) // an older, smaller count adds nothing
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 15, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "d", Issued: 3, Stock: 2})
	m.OnStoreCall(issuer.StoreCall{Entries: 100, Duration: 2 * time.Millisecond})
	m.OnStoreCall(issuer.StoreCall{Entries: 1, Duration: time.Millisecond, Err: errors.New("timeout")})

	get := func(k string) string {
		v := m.Map().Get(k)
		if v == nil {
			return "<nil>"
		}
		return v.String()
	}
	assert.Equal(t, "2", get("admit.accepted"))
	assert.Equal(t, "1", get("admit.repeat"))
	assert.Equal(t, "1", get("admit.invalid_id"))
	assert.Equal(t, "1", get("admit.unavailable"))
	assert.Equal(t, "3000", get("admit.lock_wait_us"))
	assert.Equal(t, "1", get("scheduler.ticks"))
	assert.Equal(t, "8", get("scheduler.moved"))
	assert.Equal(t, "2", get("scheduler.failed"))
	assert.Equal(t, "1", get("scheduler.errors"))
	assert.Equal(t, "1", get("issue.issued"))
	assert.Equal(t, "1", get("issue.sold_out"))
	assert.Equal(t, "6", get("issue.over_issued"), "5 past c's stock, 1 past d's")
	assert.Equal(t, "2", get("store.calls"))
	assert.Equal(t, "1", get("store.errors"))
	assert.Equal(t, "101", get("store.entries"))
	assert.Equal(t, "3000", get("store.call_us"))
}

// A node observed by Expvar reports its whole pipeline: admissions, ticks,
// decisions and Store calls.
func TestExpvarObservesNode(t *testing.T) {
	ctx := context.Background()
	m := newExpvar(t)
	store := memory.NewStore()
	n, err := node.New(node.Config{Observer: m, Store: store, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()
	// b holds one of the two units already, so the Store answers b
	// duplicate and a takes the last unit. Paused until all three wait, so
	// c is refused in the line (sold out), not at admission.
	_, err = store.Issue(ctx, couponq.IssueRequest{Campaign: "sale", User: "b", Key: "earlier/b", Stock: 2, PerUserLimit: 1})
	require.NoError(t, err)
	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: "sale", Stock: 2, Interval: 5 * time.Millisecond, Paused: true})
	require.NoError(t, err)
	for _, u := range []string{"b", "a", "c"} {
		_, err := n.Admit(ctx, couponq.Request{Campaign: "sale", User: u})
		require.NoError(t, err)
	}
	_, err = n.ResumeCampaign(ctx, "sale")
	require.NoError(t, err)
	decided := func() bool {
		for _, u := range []string{"a", "b", "c"} {
			st, err := n.Status(ctx, "sale", u)
			if err != nil || !st.State.Terminal() {
				return false
			}
		}
		return true
	}
	require.Eventually(t, decided, 10*time.Second, 5*time.Millisecond)
	get := func(k string) string {
		if v := m.Map().Get(k); v != nil {
			return v.String()
		}
		return "<nil>"
	}
	assert.Equal(t, "3", get("admit.accepted"))
	assert.Equal(t, "1", get("issue.issued"))
	assert.Equal(t, "1", get("issue.duplicate"))
	assert.Equal(t, "<nil>", get("issue.sold_out"), "the exact cutoff never hands the issuers an entry past the stock")
	st, err := n.Status(ctx, "sale", "c")
	require.NoError(t, err)
	assert.Equal(t, couponq.CodeSoldOut, st.Reason)
	assert.NotEqual(t, "<nil>", get("scheduler.ticks"))
	assert.NotEqual(t, "<nil>", get("store.calls"))
}
