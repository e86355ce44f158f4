package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/couponq/couponq/couponq"
)

// The laws of Store.Issue. Each decides campaigns of its own.

func lawStock(c *checker) {
	cp := c.campaign()
	const stock = 3
	for i := int64(1); i <= stock; i++ {
		c.issue(req(cp, fmt.Sprintf("u%d", i), i, stock, 1), issued(i == stock), "Issue %d of %d", i, stock)
	}
	for i := int64(stock + 1); i <= stock+2; i++ {
		c.issue(req(cp, fmt.Sprintf("u%d", i), i, stock, 1), soldOut(), "after the stock of %d was gone, Issue %d", stock, i)
	}
}

func lawLimitOne(c *checker) {
	cp := c.campaign()
	const stock = 3
	c.issue(req(cp, "u", 1, stock, 1), issued(false), "user u's first Issue")
	c.issue(req(cp, "u", 2, stock, 1), duplicate(false), "with stock left, user u's second Issue")
	// The duplicate took no stock: two more users fit.
	c.issue(req(cp, "v", 3, stock, 1), issued(false), "after u's duplicate, user v's Issue")
	c.issue(req(cp, "w", 4, stock, 1), issued(true), "after u's duplicate, user w's Issue (the last of the stock of 3)")
	c.issue(req(cp, "u", 5, stock, 1), duplicate(true), "after the sell-out, user u's third Issue")
	c.issue(req(cp, "x", 6, stock, 1), soldOut(), "after the sell-out, new user x's Issue")
}

func lawLimitTwo(c *checker) {
	cp := c.campaign()
	const stock = 10
	c.issue(req(cp, "u", 1, stock, 2), issued(false), "user u's first Issue (PerUserLimit 2)")
	c.issue(req(cp, "u", 2, stock, 2), issued(false), "user u's second Issue (PerUserLimit 2)")
	c.issue(req(cp, "u", 3, stock, 2), duplicate(false), "user u's third Issue (PerUserLimit 2)")
	c.issue(req(cp, "u", 4, stock, 2), duplicate(false), "user u's fourth Issue (PerUserLimit 2)")
	c.issue(req(cp, "z", 5, stock, 0), issued(false), "user z's first Issue (PerUserLimit 0)")
	c.issue(req(cp, "z", 6, stock, 0), duplicate(false), "user z's second Issue (PerUserLimit 0, which means 1)")
	c.remaining(cp, stock, stock-3, "u was issued 2 and z 1")
}

func lawRedelivery(c *checker) {
	cp := c.campaign()
	const stock = 3
	r := req(cp, "u", 1, stock, 1)
	first := c.issue(r, issued(false), "first Issue")
	if first.Outcome != couponq.Issued {
		return
	}
	c.issue(r, reissued(first.ID, false), "with stock left, the second Issue")
	c.issue(r, reissued(first.ID, false), "with stock left, the third Issue")
	c.issue(req(cp, "v", 2, stock, 1), issued(false), "after u's redeliveries, user v's Issue")
	c.issue(req(cp, "w", 3, stock, 1), issued(true), "after u's redeliveries, user w's Issue (the last of the stock of 3)")
	c.issue(r, reissued(first.ID, true), "after other users sold the campaign out, the fourth Issue")
	c.issue(req(cp, "x", 4, stock, 1), soldOut(), "after the sell-out, new user x's Issue")

	// A redelivery does not count toward the user's limit.
	cp = c.campaign()
	r = req(cp, "p", 1, 10, 2)
	first = c.issue(r, issued(false), "first Issue (PerUserLimit 2)")
	if first.Outcome != couponq.Issued {
		return
	}
	c.issue(r, reissued(first.ID, false), "second Issue (PerUserLimit 2)")
	c.issue(req(cp, "p", 2, 10, 2), issued(false), "after the redelivery of its first entry, user p's second entry (PerUserLimit 2)")
	c.issue(req(cp, "p", 3, 10, 2), duplicate(false), "user p's third entry (PerUserLimit 2)")
	c.issue(r, reissued(first.ID, false), "after user p reached PerUserLimit 2, the third Issue")
}

func lawRejectedKey(c *checker) {
	// A key first answered duplicate while stock remains.
	cp := c.campaign()
	const stock = 2
	c.issue(req(cp, "u", 1, stock, 1), issued(false), "user u's first Issue")
	dup := req(cp, "u", 2, stock, 1)
	c.issue(dup, duplicate(false), "with stock left, user u's second entry: first Issue")
	c.issue(dup, duplicate(false), "with stock left, user u's second entry: second Issue")
	c.issue(dup, duplicate(false), "with stock left, user u's second entry: third Issue")
	c.remaining(cp, stock, 1, fmt.Sprintf("three Issues of the duplicate key %q", dup.Key))

	// A key first answered sold_out.
	cp = c.campaign()
	c.issue(req(cp, "u", 1, 1, 1), issued(true), "user u's Issue (the stock of 1)")
	late := req(cp, "v", 2, 1, 1)
	c.issue(late, soldOut(), "after the sell-out, user v's entry: first Issue")
	c.issue(late, soldOut(), "after the sell-out, user v's entry: second Issue")
	dup = req(cp, "u", 3, 1, 1)
	c.issue(dup, duplicate(true), "after the sell-out, user u's second entry: first Issue")
	c.issue(dup, duplicate(true), "after the sell-out, user u's second entry: second Issue")
}

func lawDuplicateNoStock(c *checker) {
	cp := c.campaign()
	const stock = 2
	c.issue(req(cp, "u", 1, stock, 1), issued(false), "user u's first Issue")
	for n := int64(2); n <= 6; n++ {
		c.issue(req(cp, "u", n, stock, 1), duplicate(false), "user u's Issue %d", n)
	}
	c.remaining(cp, stock, 1, "user u's five duplicates")
}

func lawConcurrent(c *checker) {
	cp := c.campaign()
	const stock, users, tries = 50, 200, 2
	var (
		mu      sync.Mutex
		t       tally
		perUser = map[string]int{}
		g       = newGate()
	)
	for i := range users * tries {
		g.Go(func() {
			u := fmt.Sprintf("u%d", i%users)
			r := req(cp, u, int64(i+1), stock, 1)
			got, err := c.s.Issue(c.ctx, r)
			if err != nil {
				c.errorf("concurrent Issue of key %q failed: %v", r.Key, err)
				return
			}
			c.shape(fmt.Sprintf("concurrent Issue of key %q", r.Key), r, got)
			mu.Lock()
			defer mu.Unlock()
			t.add(got)
			if got.Outcome == couponq.Issued {
				perUser[u]++
			}
		})
	}
	g.openAndWait()
	if t.issued != stock {
		c.errorf("%d concurrent Issues of %d users answered %s; want exactly the stock of %d issued", users*tries, users, t, stock)
	}
	if t.soldOutFlag == 0 && t.issued == stock {
		c.errorf("%d concurrent Issues of %d users answered %s; want SoldOut true on the issuance that took the last unit", users*tries, users, t)
	}
	if n, some := overLimit(perUser, 1); n > 0 {
		c.errorf("%d concurrent Issues issued %d users more than PerUserLimit 1: %s", users*tries, n, some)
	}
	c.issue(c.fresh(cp, stock, 1), soldOut(), "after the concurrent Issues, a new user's Issue")
}

func lawConcurrentUser(c *checker) {
	cp := c.campaign()
	const stock, limit, calls = 3, 2, 20
	var (
		mu sync.Mutex
		t  tally
		g  = newGate()
	)
	for i := range calls {
		g.Go(func() {
			r := req(cp, "u", int64(i+1), stock, limit)
			got, err := c.s.Issue(c.ctx, r)
			if err != nil {
				c.errorf("concurrent Issue of key %q failed: %v", r.Key, err)
				return
			}
			c.shape(fmt.Sprintf("concurrent Issue of key %q", r.Key), r, got)
			if got.SoldOut {
				c.errorf("concurrent Issue of key %q answered %s, want SoldOut false: user u can take at most %d of the stock of %d",
					r.Key, show(got), limit, stock)
			}
			mu.Lock()
			t.add(got)
			mu.Unlock()
		})
	}
	g.openAndWait()
	if t.issued != limit || t.duplicate != calls-limit {
		c.errorf("%d concurrent Issues of user u under distinct keys (PerUserLimit %d, stock %d) answered %s; want issued %d, duplicate %d",
			calls, limit, stock, t, limit, calls-limit)
	}
	c.issue(req(cp, "v", calls+1, stock, limit), issued(true), "after u's %d concurrent Issues, user v's Issue (the last of the stock of 3)", calls)
}

func lawConcurrentSameKey(c *checker) {
	cp := c.campaign()
	const stock, calls = 5, 20
	r := req(cp, "u", 1, stock, 1)
	var (
		g   = newGate()
		got = make([]couponq.Issuance, calls)
		ok  = make([]bool, calls)
	)
	for i := range calls {
		g.Go(func() {
			iss, err := c.s.Issue(c.ctx, r)
			if err != nil {
				c.errorf("concurrent Issue %d of key %q failed: %v", i, r.Key, err)
				return
			}
			got[i], ok[i] = iss, true
		})
	}
	g.openAndWait()
	answers := map[couponq.Issuance]int{}
	for i := range calls {
		if ok[i] {
			answers[got[i]]++
		}
	}
	var one couponq.Issuance
	for iss := range answers {
		one = iss
	}
	if w := issued(false); len(answers) > 1 || (len(answers) == 1 && !w.match(one)) {
		var some []string
		for iss, n := range answers {
			some = append(some, fmt.Sprintf("%s %d times", show(iss), n))
		}
		slices.Sort(some)
		if len(some) > 3 {
			some = append(some[:3:3], "...")
		}
		c.errorf("%d concurrent Issues of key %q got %d different answers: %s; want the same answer every time, %s",
			calls, r.Key, len(answers), strings.Join(some, ", "), w)
	}
	c.remaining(cp, stock, stock-1, fmt.Sprintf("%d concurrent Issues of key %q", calls, r.Key))
}

func lawIndependent(c *checker) {
	a, b := c.campaign(), c.campaign()
	ra := req(a, "u", 1, 1, 1)
	first := c.issue(ra, issued(true), "user u's Issue in campaign A (stock 1)")
	c.issue(req(b, "u", 1, 2, 1), issued(false), "after u was issued in campaign A, user u's Issue in campaign B (stock 2)")
	c.issue(req(a, "v", 2, 1, 1), soldOut(), "after campaign A sold out, user v's Issue in A")
	c.issue(req(b, "v", 2, 2, 1), issued(true), "after campaign A sold out, user v's Issue in campaign B (the last of its stock of 2)")
	c.issue(ra, reissued(first.ID, true), "after both campaigns sold out, the redelivered Issue in campaign A")
}

func lawIncarnations(c *checker) {
	id := c.campaign()
	first := couponq.Campaign{ID: id, Incarnation: 1}.StoreCampaign()
	second := couponq.Campaign{ID: id, Incarnation: 2}.StoreCampaign()
	r1 := req(first, "u", 1, 1, 1)
	got := c.issue(r1, issued(true), "user u's Issue of entry 1 in the first incarnation (stock 1)")
	c.issue(req(first, "v", 2, 1, 1), soldOut(), "user v's Issue in the sold-out first incarnation")
	c.issue(req(second, "u", 1, 1, 1), issued(true), "after the first incarnation sold out to user u, user u's Issue of entry 1 in the second (stock 1)")
	c.issue(req(second, "v", 2, 1, 1), soldOut(), "user v's Issue in the sold-out second incarnation")
	c.issue(r1, reissued(got.ID, true), "the redelivered Issue of entry 1 in the first incarnation")
	if counter, ok := c.s.(couponq.IssuedCounter); ok {
		for _, name := range []string{first, second} {
			n, err := counter.IssuedCount(c.ctx, name)
			if err != nil {
				c.fatalf("IssuedCount(%q) failed: %v", name, err)
			}
			if n != 1 {
				c.errorf("IssuedCount(%q) after one unit of each incarnation is %d, want 1", name, n)
			}
		}
	}
}

func lawCancelled(c *checker) {
	cp := c.campaign()
	ctx, cancel := context.WithCancel(c.ctx)
	cancel()
	r := req(cp, "u", 1, 1, 1)
	if got, err := c.s.Issue(ctx, r); err == nil {
		c.errorf("Issue of key %q with a cancelled context answered %s and no error, want an error", r.Key, show(got))
	}
	c.issue(req(cp, "v", 2, 1, 1), issued(true), "after a cancelled call, user v's Issue (the stock of 1)")
	c.issue(r, soldOut(), "after the sell-out, a live-context retry of the cancelled Issue")
}

func lawInvalid(c *checker) {
	cp := c.campaign()
	const stock = 1
	cases := []struct {
		what string
		r    couponq.IssueRequest
	}{
		{"empty Campaign", couponq.IssueRequest{User: "u", Key: cp + "/1/u", Stock: stock, PerUserLimit: 1}},
		{"empty User", couponq.IssueRequest{Campaign: cp, Key: cp + "/2/", Stock: stock, PerUserLimit: 1}},
		{"empty Key", couponq.IssueRequest{Campaign: cp, User: "u", Stock: stock, PerUserLimit: 1}},
		{"Stock 0", req(cp, "u", 4, 0, 1)},
		{"Stock -1", req(cp, "u", 5, -1, 1)},
	}
	for _, tc := range cases {
		if got, err := c.s.Issue(c.ctx, tc.r); err == nil {
			c.errorf("Issue of a request with %s %s answered %s and no error, want an error", tc.what, showReq(tc.r), show(got))
		}
	}
	c.issue(req(cp, "u", 6, stock, 1), issued(true), "after the invalid requests, user u's valid Issue (the stock of 1)")
}

// overLimit returns how many users hold more than limit units, and a few of
// them with their counts.
func overLimit(perUser map[string]int, limit int) (int, string) {
	var over []string
	for u, n := range perUser {
		if n > limit {
			over = append(over, fmt.Sprintf("%q %d units", u, n))
		}
	}
	slices.Sort(over)
	some := over
	if len(some) > 5 {
		some = append(some[:5:5], "...")
	}
	return len(over), strings.Join(some, ", ")
}

func lawIssuedCount(c *checker) {
	counter, ok := c.s.(couponq.IssuedCounter)
	if !ok {
		return // the law is about the counter: a Store without one has nothing to break
	}
	cp, other := c.campaign(), c.campaign()
	count := func(campaign string, want int64, after string) {
		c.t.Helper()
		n, err := counter.IssuedCount(c.ctx, campaign)
		if err != nil {
			c.fatalf("IssuedCount after %s failed: %v", after, err)
		}
		if n != want {
			c.errorf("IssuedCount after %s is %d, want %d", after, n, want)
		}
	}
	const stock = 2
	count(cp, 0, "no call")
	first := req(cp, "a", 1, stock, 1)
	got := c.issue(first, issued(false), "user a's Issue")
	count(cp, 1, "one issuance")
	c.issue(first, reissued(got.ID, false), "user a's redelivery")
	c.issue(req(cp, "a", 2, stock, 1), duplicate(false), "user a's second entry")
	count(cp, 1, "a redelivery and a duplicate")
	c.issue(req(cp, "b", 3, stock, 1), issued(true), "user b's Issue")
	c.issue(req(cp, "c", 4, stock, 1), soldOut(), "user c's Issue")
	count(cp, 2, "the sell-out and a sold_out answer")
	count(other, 0, "issuances of another campaign")
}
