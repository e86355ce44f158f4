package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/issuer"
)

func TestExpvarCounts(t *testing.T) {
	m := metrics.NewExpvar("couponq_test")
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "c", Stock: 1})
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q, OnAdmit: m.OnAdmit})
	require.NoError(t, err)
	ctx := context.Background()
	_, _ = svc.Admit(ctx, couponq.Request{Campaign: "c", User: "a"})
	_, _ = svc.Admit(ctx, couponq.Request{Campaign: "c", User: "a"})
	_, _ = svc.Admit(ctx, couponq.Request{Campaign: "c", User: "bad id"})
	m.OnAdmit(couponq.AdmitEvent{Err: fmt.Errorf("%w: x", couponq.ErrUnavailable)})
	m.OnAdmit(couponq.AdmitEvent{LockWait: 3 * time.Millisecond})
	m.OnTick(dispatch.TickEvent{Leased: 10, Failed: 2, Err: errors.New("x")})
	m.OnIssue(issuer.Event{Result: couponq.Result{State: couponq.StateIssued}})
	m.OnIssue(issuer.Event{Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.ReasonSoldOut}})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 12, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 11, Stock: 10}) // an older, smaller count adds nothing
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 15, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "d", Issued: 3, Stock: 2})

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
	assert.Equal(t, "8", get("throttle.moved"))
	assert.Equal(t, "2", get("throttle.failed"))
	assert.Equal(t, "1", get("throttle.errors"))
	assert.Equal(t, "1", get("issue.issued"))
	assert.Equal(t, "1", get("issue.sold_out"))
	assert.Equal(t, "6", get("issue.over_issued"), "5 past c's stock, 1 past d's")
}
