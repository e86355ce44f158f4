package storetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/couponq/couponq/couponq"
)

// The laws of BatchStore.IssueBatch: the laws of Issue in batch form, plus
// what only a batch can get wrong. Each decides campaigns of its own.

func lawBatchOnePerRequest(c *checker) {
	cp := c.campaign()
	const stock, n = 200, 250
	rs := make([]couponq.IssueRequest, n)
	ws := make([]want, n)
	for i := range rs {
		rs[i] = req(cp, fmt.Sprintf("u%d", i), int64(i+1), stock, 1)
		ws[i] = issued(i == stock-1)
		if i >= stock {
			ws[i] = soldOut()
		}
	}
	c.batch(rs, ws, "IssueBatch of %d requests (stock %d)", n, stock)
	one := c.fresh(c.campaign(), 1, 1)
	c.batch([]couponq.IssueRequest{one}, []want{issued(true)}, "IssueBatch of one request (stock 1)")
}

func lawBatchSellsOut(c *checker) {
	cp := c.campaign()
	const stock = 3
	rs := []couponq.IssueRequest{
		req(cp, "u1", 1, stock, 1), req(cp, "u2", 2, stock, 1), req(cp, "u3", 3, stock, 1),
		req(cp, "u4", 4, stock, 1), req(cp, "u5", 5, stock, 1),
	}
	c.batch(rs, []want{issued(false), issued(false), issued(true), soldOut(), soldOut()},
		"IssueBatch of 5 users (stock %d)", stock)

	// A batch that starts with stock partly taken.
	cp = c.campaign()
	c.issue(req(cp, "u0", 1, stock, 1), issued(false), "user u0's Issue (stock 3)")
	rs = []couponq.IssueRequest{req(cp, "u1", 2, stock, 1), req(cp, "u2", 3, stock, 1), req(cp, "u3", 4, stock, 1)}
	c.batch(rs, []want{issued(false), issued(true), soldOut()}, "after one Issue, IssueBatch of 3 users (stock %d)", stock)
}

func lawBatchSameKey(c *checker) {
	cp := c.campaign()
	const stock = 3
	k := req(cp, "u", 1, stock, 1)
	got := c.batch([]couponq.IssueRequest{k, req(cp, "v", 2, stock, 1), k}, nil, "IssueBatch holding user u's key twice")
	if w := issued(false); !w.match(got[0]) {
		c.errorf("IssueBatch holding key %q at indexes 0 and 2 answered %s at index 0, want %s", k.Key, show(got[0]), w)
	} else if w := reissued(got[0].ID, false); !w.match(got[2]) {
		c.errorf("IssueBatch holding key %q at indexes 0 and 2 answered %s, want %s at index 2", k.Key, showAll(got), w)
	}
	c.remaining(cp, stock, 1, fmt.Sprintf("an IssueBatch holding key %q twice and one other user", k.Key))

	// The repeated key takes the last unit.
	cp = c.campaign()
	k = req(cp, "u", 1, 1, 1)
	got = c.batch([]couponq.IssueRequest{k, k, k}, nil, "IssueBatch holding one key three times (stock 1)")
	for i := range got {
		if w := reissued(got[0].ID, true); got[0].Outcome != couponq.Issued || !w.match(got[i]) {
			c.errorf("IssueBatch holding key %q three times (stock 1) answered %s, want issued with one ID at every index, SoldOut true", k.Key, showAll(got))
			break
		}
	}
}

func lawBatchSameUser(c *checker) {
	cp := c.campaign()
	const stock = 3
	rs := []couponq.IssueRequest{
		req(cp, "u", 1, stock, 1), req(cp, "u", 2, stock, 1), req(cp, "u", 3, stock, 1), req(cp, "v", 4, stock, 1),
	}
	c.batch(rs, []want{issued(false), duplicate(false), duplicate(false), issued(false)},
		"IssueBatch holding three entries of user u (PerUserLimit 1, stock %d)", stock)
	c.remaining(cp, stock, 1, "an IssueBatch issuing users u and v and answering u's two other entries duplicate")

	cp = c.campaign()
	rs = []couponq.IssueRequest{req(cp, "p", 1, 10, 2), req(cp, "p", 2, 10, 2), req(cp, "p", 3, 10, 2)}
	c.batch(rs, []want{issued(false), issued(false), duplicate(false)}, "IssueBatch holding three entries of user p (PerUserLimit 2)")
	rs = []couponq.IssueRequest{req(cp, "z", 4, 10, 0), req(cp, "z", 5, 10, 0)}
	c.batch(rs, []want{issued(false), duplicate(false)}, "IssueBatch holding two entries of user z (PerUserLimit 0, which means 1)")
}

func lawBatchReplay(c *checker) {
	cp := c.campaign()
	const stock = 5
	rs := []couponq.IssueRequest{
		req(cp, "a", 1, stock, 1), req(cp, "b", 2, stock, 1), req(cp, "a", 3, stock, 1), req(cp, "c", 4, stock, 1),
	}
	first := c.batch(rs, []want{issued(false), issued(false), duplicate(false), issued(false)}, "first IssueBatch")
	again := func(soldOut bool) []want {
		ws := make([]want, len(first))
		for i, iss := range first {
			ws[i] = want{outcome: iss.Outcome, id: iss.ID, soldOut: soldOut}
		}
		return ws
	}
	c.batch(rs, again(false), "with stock left, the same IssueBatch sent again")
	c.remaining(cp, stock, 2, "a batch issuing 3 of the stock of 5, sent twice")
	c.batch(rs, again(true), "after the sell-out, the same IssueBatch sent a third time")

	// A batch that ended in sold_out, sent again.
	cp = c.campaign()
	rs = []couponq.IssueRequest{req(cp, "a", 1, 1, 1), req(cp, "b", 2, 1, 1)}
	first = c.batch(rs, []want{issued(true), soldOut()}, "first IssueBatch (stock 1)")
	c.batch(rs, []want{reissued(first[0].ID, true), soldOut()}, "the same IssueBatch (stock 1) sent again")
}

func lawBatchMixed(c *checker) {
	cp := c.campaign()
	const stock = 3
	k1 := req(cp, "u1", 1, stock, 1)
	first := c.issue(k1, issued(false), "user u1's Issue, before the batch,")
	rs := []couponq.IssueRequest{
		req(cp, "u1", 2, stock, 1), // duplicate: u1 was served by the earlier call
		k1,                         // redelivered: u1's first issuance
		req(cp, "u2", 3, stock, 1), // issued
		req(cp, "u3", 4, stock, 1), // issued, the last unit
		req(cp, "u4", 5, stock, 1), // sold_out
		k1,                         // redelivered again, now after the sell-out
	}
	c.batch(rs, []want{
		duplicate(false), reissued(first.ID, false), issued(false), issued(true), soldOut(), reissued(first.ID, true),
	}, "IssueBatch of mixed outcomes")
}

func lawBatchIndependent(c *checker) {
	a, b := c.campaign(), c.campaign()
	ka := req(a, "u", 1, 1, 1)
	rs := []couponq.IssueRequest{
		ka,                   // A: issued, the last unit
		req(b, "u", 1, 2, 1), // B: issued
		req(a, "v", 2, 1, 1), // A: sold_out
		req(b, "v", 2, 2, 1), // B: issued, the last unit
		req(b, "w", 3, 2, 1), // B: sold_out
		req(a, "u", 3, 1, 1), // A: duplicate
		ka,                   // A: redelivered
	}
	got := c.batch(rs, nil, "IssueBatch of campaigns A (stock 1) and B (stock 2)")
	id := got[0].ID
	if got[0].Outcome != couponq.Issued {
		id = ""
	}
	ws := []want{issued(true), issued(false), soldOut(), issued(true), soldOut(), duplicate(true), reissued(id, true)}
	for i := range ws {
		if !ws[i].match(got[i]) {
			c.errorf("IssueBatch of campaigns A (stock 1) and B (stock 2), index %d (key %q), answered %s, want %s; every answer: %s",
				i, rs[i].Key, show(got[i]), ws[i], showAll(got))
		}
	}
}

func lawBatchAgrees(c *checker) {
	cp := c.campaign()
	const stock = 4
	ku, kv, kw := req(cp, "u", 1, stock, 1), req(cp, "v", 2, stock, 1), req(cp, "w", 3, stock, 1)
	u := c.issue(ku, issued(false), "user u's Issue")
	got := c.batch([]couponq.IssueRequest{ku, kv}, []want{reissued(u.ID, false), issued(false)},
		"after user u's Issue, IssueBatch of u's key and user v")
	c.issue(kv, reissued(got[1].ID, false), "after IssueBatch issued it, an Issue")
	c.issue(req(cp, "v", 4, stock, 1), duplicate(false), "after IssueBatch issued user v, v's second entry by Issue")
	c.batch([]couponq.IssueRequest{req(cp, "u", 5, stock, 1)}, []want{duplicate(false)},
		"after Issue issued user u, IssueBatch of u's second entry")
	w := c.batch([]couponq.IssueRequest{kw, req(cp, "x", 6, stock, 1)}, []want{issued(false), issued(true)},
		"IssueBatch of users w and x, taking the last two of the stock of 4")
	c.issue(req(cp, "y", 7, stock, 1), soldOut(), "after IssueBatch sold the campaign out, user y's Issue")
	c.issue(kw, reissued(w[0].ID, true), "after the sell-out, an Issue redelivering what IssueBatch issued")
	c.batch([]couponq.IssueRequest{ku}, []want{reissued(u.ID, true)}, "after the sell-out, an IssueBatch redelivering what Issue issued")
}

func lawBatchConcurrent(c *checker) {
	cp := c.campaign()
	const stock, users, batches, size = 50, 200, 20, 20
	var (
		mu      sync.Mutex
		t       tally
		perUser = map[string]int{}
		g       = newGate()
	)
	for b := range batches {
		rs := make([]couponq.IssueRequest, size)
		for j := range rs {
			i := b*size + j
			rs[j] = req(cp, fmt.Sprintf("u%d", i%users), int64(i+1), stock, 1)
		}
		g.Go(func() {
			got, err := c.bs.IssueBatch(c.ctx, rs)
			if err != nil {
				c.errorf("concurrent IssueBatch %d failed: %v", b, err)
				return
			}
			if len(got) != len(rs) {
				c.errorf("concurrent IssueBatch %d of %d requests answered %d issuances %s", b, len(rs), len(got), showAll(got))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for j, iss := range got {
				c.shape(fmt.Sprintf("concurrent IssueBatch %d, index %d (key %q),", b, j, rs[j].Key), rs[j], iss)
				t.add(iss)
				if iss.Outcome == couponq.Issued {
					perUser[rs[j].User]++
				}
			}
		})
	}
	g.openAndWait()
	if t.issued != stock {
		c.errorf("%d concurrent IssueBatches of %d requests by %d users answered %s; want exactly the stock of %d issued",
			batches, size, users, t, stock)
	}
	if t.soldOutFlag == 0 && t.issued == stock {
		c.errorf("%d concurrent IssueBatches answered %s; want SoldOut true on the issuance that took the last unit", batches, t)
	}
	if n, some := overLimit(perUser, 1); n > 0 {
		c.errorf("%d concurrent IssueBatches issued %d users more than PerUserLimit 1: %s", batches, n, some)
	}
	c.issue(c.fresh(cp, stock, 1), soldOut(), "after the concurrent IssueBatches, a new user's Issue")
}

func lawBatchConcurrentReplay(c *checker) {
	cp := c.campaign()
	const stock, size, calls = 10, 5, 10
	rs := make([]couponq.IssueRequest, size)
	for i := range rs {
		rs[i] = req(cp, fmt.Sprintf("u%d", i), int64(i+1), stock, 1)
	}
	var (
		g   = newGate()
		got = make([][]couponq.Issuance, calls)
	)
	for k := range calls {
		g.Go(func() {
			iss, err := c.bs.IssueBatch(c.ctx, rs)
			if err != nil {
				c.errorf("concurrent IssueBatch %d failed: %v", k, err)
				return
			}
			got[k] = iss
		})
	}
	g.openAndWait()
	// Each batch's answers must be the first batch's, which must be all
	// issued: report the first difference and how many batches differ.
	var (
		ref   []couponq.Issuance
		bad   int
		first string
	)
	for k, iss := range got {
		if iss == nil {
			continue // failed, reported above
		}
		diff := ""
		switch {
		case len(iss) != size:
			diff = fmt.Sprintf("concurrent IssueBatch %d of %d requests answered %d issuances %s", k, size, len(iss), showAll(iss))
		case ref == nil:
			ref = iss
			for i := range iss {
				if w := issued(false); !w.match(iss[i]) {
					diff = fmt.Sprintf("concurrent IssueBatch %d, index %d (key %q), answered %s, want %s", k, i, rs[i].Key, show(iss[i]), w)
					break
				}
			}
		default:
			for i := range iss {
				if w := reissued(ref[i].ID, false); !w.match(iss[i]) {
					diff = fmt.Sprintf("concurrent IssueBatch %d, index %d (key %q), answered %s, want %s as another batch got",
						k, i, rs[i].Key, show(iss[i]), w)
					break
				}
			}
		}
		if diff != "" {
			if bad++; first == "" {
				first = diff
			}
		}
	}
	if bad > 0 {
		c.errorf("%d of %d concurrent IssueBatches of the same %d requests answered wrong; the first: %s", bad, calls, size, first)
	}
	c.remaining(cp, stock, stock-size, fmt.Sprintf("the same batch of %d users sent %d times at once", size, calls))
}

func lawBatchEmpty(c *checker) {
	for _, rs := range [][]couponq.IssueRequest{nil, {}} {
		got, err := c.bs.IssueBatch(c.ctx, rs)
		switch {
		case err != nil:
			c.errorf("IssueBatch of %s failed: %v, want no error", emptyName(rs), err)
		case len(got) != 0:
			c.errorf("IssueBatch of %s answered %s, want no issuances", emptyName(rs), showAll(got))
		}
	}
}

func emptyName(rs []couponq.IssueRequest) string {
	if rs == nil {
		return "a nil batch"
	}
	return "an empty batch"
}

func lawBatchCancelled(c *checker) {
	cp := c.campaign()
	const stock = 2
	ctx, cancel := context.WithCancel(c.ctx)
	cancel()
	rs := []couponq.IssueRequest{req(cp, "u", 1, stock, 1), req(cp, "v", 2, stock, 1)}
	if got, err := c.bs.IssueBatch(ctx, rs); err == nil {
		c.errorf("IssueBatch with a cancelled context answered %s and no error, want an error", showAll(got))
	}
	c.batch([]couponq.IssueRequest{req(cp, "w", 3, stock, 1), req(cp, "x", 4, stock, 1)}, []want{issued(false), issued(true)},
		"after a cancelled IssueBatch, IssueBatch of two other users (the stock of 2)")
	c.batch(rs, []want{soldOut(), soldOut()}, "after the sell-out, a live-context retry of the cancelled IssueBatch")
}

func lawBatchInvalid(c *checker) {
	cp := c.campaign()
	valid := req(cp, "u", 1, 5, 1)
	cases := []struct {
		what string
		r    couponq.IssueRequest
	}{
		{"empty Campaign", couponq.IssueRequest{User: "v", Key: cp + "/2/v", Stock: 5, PerUserLimit: 1}},
		{"empty User", couponq.IssueRequest{Campaign: cp, Key: cp + "/3/", Stock: 5, PerUserLimit: 1}},
		{"empty Key", couponq.IssueRequest{Campaign: cp, User: "v", Stock: 5, PerUserLimit: 1}},
		{"Stock 0", req(cp, "v", 5, 0, 1)},
		{"Stock -1", req(cp, "v", 6, -1, 1)},
	}
	for _, tc := range cases {
		if got, err := c.bs.IssueBatch(c.ctx, []couponq.IssueRequest{valid, tc.r}); err == nil {
			c.errorf("IssueBatch of a valid request and one with %s %s answered %s and no error, want an error",
				tc.what, showReq(tc.r), showAll(got))
		}
	}
}
