// Package storetest is the conformance suite every couponq.Store must pass.
// A host plugging in its own Store runs it in its tests:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) couponq.Store { return newMyStore(t) })
//	}
//
// Each test uses fresh campaign IDs, so a factory may hand out one shared
// database.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
)

// Run runs the suite; newStore is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) couponq.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s couponq.Store, campaign string)
	}{
		{"IssuesUpToStockThenSoldOut", testStock},
		{"PerUserLimitOne", testLimitOne},
		{"PerUserLimitTwo", testLimitTwo},
		{"RedeliveryGetsTheSameOutcome", testIdempotent},
		{"ConcurrentNeverOverIssues", testConcurrent},
		{"ConcurrentRedeliveriesIssueOnce", testConcurrentSameKey},
		{"CampaignsAreIndependent", testIndependent},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t), campaignID())
		})
	}
}

var seq atomic.Int64

func campaignID() string { return fmt.Sprintf("st-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)) }

func req(c, user string, n int64, stock int64, limit int) couponq.IssueRequest {
	e := couponq.Entry{Campaign: c, User: user, Number: n}
	return couponq.IssueRequest{Campaign: c, User: user, Key: e.Key(), Stock: stock, PerUserLimit: limit}
}

func issue(t *testing.T, s couponq.Store, r couponq.IssueRequest) couponq.Issuance {
	t.Helper()
	iss, err := s.Issue(context.Background(), r)
	require.NoError(t, err)
	return iss
}

func testStock(t *testing.T, s couponq.Store, c string) {
	ids := map[string]bool{}
	for i := 1; i <= 3; i++ {
		iss := issue(t, s, req(c, fmt.Sprintf("u%d", i), int64(i), 3, 1))
		assert.Equal(t, couponq.Issued, iss.Outcome)
		assert.NotEmpty(t, iss.ID)
		assert.False(t, ids[iss.ID], "issuance IDs are unique")
		ids[iss.ID] = true
		assert.Equal(t, i == 3, iss.SoldOut, "SoldOut tells whether stock remains after call %d", i)
	}
	iss := issue(t, s, req(c, "u4", 4, 3, 1))
	assert.Equal(t, couponq.SoldOut, iss.Outcome)
	assert.True(t, iss.SoldOut)
	assert.Empty(t, iss.ID)
}

func testLimitOne(t *testing.T, s couponq.Store, c string) {
	first := issue(t, s, req(c, "u", 1, 10, 1))
	assert.Equal(t, couponq.Issued, first.Outcome)
	dup := issue(t, s, req(c, "u", 2, 10, 1))
	assert.Equal(t, couponq.AlreadyIssued, dup.Outcome)
	assert.Empty(t, dup.ID)
	assert.False(t, dup.SoldOut)
	// The duplicate took no stock: nine more users fit.
	for i := range 9 {
		assert.Equal(t, couponq.Issued, issue(t, s, req(c, fmt.Sprintf("o%d", i), int64(10+i), 10, 1)).Outcome)
	}
	assert.Equal(t, couponq.SoldOut, issue(t, s, req(c, "x", 99, 10, 1)).Outcome)
	assert.Equal(t, couponq.AlreadyIssued, issue(t, s, req(c, "u", 100, 10, 1)).Outcome,
		"a user at the limit hears duplicate even after sell-out")
}

func testLimitTwo(t *testing.T, s couponq.Store, c string) {
	assert.Equal(t, couponq.Issued, issue(t, s, req(c, "u", 1, 10, 2)).Outcome)
	assert.Equal(t, couponq.Issued, issue(t, s, req(c, "u", 2, 10, 2)).Outcome)
	assert.Equal(t, couponq.AlreadyIssued, issue(t, s, req(c, "u", 3, 10, 2)).Outcome)
	zero := req(c, "z", 4, 10, 0)
	assert.Equal(t, couponq.Issued, issue(t, s, zero).Outcome, "limit 0 means 1")
	zero.Key = "other-key"
	assert.Equal(t, couponq.AlreadyIssued, issue(t, s, zero).Outcome, "limit 0 means 1")
}

func testIdempotent(t *testing.T, s couponq.Store, c string) {
	r := req(c, "u", 1, 2, 1)
	first := issue(t, s, r)
	require.Equal(t, couponq.Issued, first.Outcome)
	again := issue(t, s, r)
	assert.Equal(t, couponq.Issued, again.Outcome, "a redelivered entry gets its issuance back, not a duplicate")
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, couponq.Issued, issue(t, s, req(c, "v", 2, 2, 1)).Outcome, "the redelivery took no stock")
	last := issue(t, s, r)
	assert.Equal(t, first.ID, last.ID)
	assert.True(t, last.SoldOut)
}

func testConcurrent(t *testing.T, s couponq.Store, c string) {
	const stock, users, tries = 50, 200, 2
	var issued atomic.Int64
	var mu sync.Mutex
	perUser := map[string]int{}
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for i := range users * tries {
		wg.Go(func() {
			u := fmt.Sprintf("u%d", i%users)
			iss, err := s.Issue(context.Background(), req(c, u, int64(i+1), stock, 1))
			if !assert.NoError(t, err) {
				return
			}
			if iss.Outcome == couponq.Issued {
				issued.Add(1)
				mu.Lock()
				perUser[u]++
				assert.False(t, ids[iss.ID], "issuance ID %s twice", iss.ID)
				ids[iss.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(stock), issued.Load(), "exactly the stock is issued")
	for u, n := range perUser {
		assert.Equal(t, 1, n, "user %s issued %d times", u, n)
	}
}

func testConcurrentSameKey(t *testing.T, s couponq.Store, c string) {
	r := req(c, "u", 1, 5, 1)
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			iss, err := s.Issue(context.Background(), r)
			if assert.NoError(t, err) {
				assert.Equal(t, couponq.Issued, iss.Outcome)
				ids[i] = iss.ID
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	for i := range 4 {
		assert.Equal(t, couponq.Issued, issue(t, s, req(c, fmt.Sprintf("o%d", i), int64(i+2), 5, 1)).Outcome)
	}
	assert.Equal(t, couponq.SoldOut, issue(t, s, req(c, "late", 9, 5, 1)).Outcome)
}

func testIndependent(t *testing.T, s couponq.Store, c string) {
	other := c + "-other"
	assert.Equal(t, couponq.Issued, issue(t, s, req(c, "u", 1, 1, 1)).Outcome)
	assert.Equal(t, couponq.Issued, issue(t, s, req(other, "u", 1, 1, 1)).Outcome)
	assert.Equal(t, couponq.SoldOut, issue(t, s, req(c, "v", 2, 1, 1)).Outcome)
}

func testCancelled(t *testing.T, s couponq.Store, c string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Issue(ctx, req(c, "u", 1, 1, 1))
	assert.Error(t, err)
	assert.Equal(t, couponq.Issued, issue(t, s, req(c, "v", 2, 1, 1)).Outcome, "a cancelled call takes no stock")
}
