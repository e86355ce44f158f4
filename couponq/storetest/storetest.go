package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/couponq/couponq/couponq"
)

// Law is one rule every couponq.Store keeps. Run checks each law as a
// subtest of the same name, and every failure message quotes the law.
type Law struct {
	// Name is the subtest's name under Run, such as
	// "RedeliveryGetsTheSameOutcome"; the laws of couponq.BatchStore are
	// named "Batch/...".
	Name string
	// Text states the law in plain words.
	Text string
}

// law is a Law with the function that checks it.
type law struct {
	Law
	check func(c *checker)
}

// singleLaws hold for Issue, batchLaws for IssueBatch. The package doc lists
// every law in this order with this text (TestDocListsEveryLaw keeps them in
// step).
var (
	singleLaws = []law{
		{Law{"IssuesUpToStockThenSoldOut",
			"distinct users are issued exactly Stock units, each under its own ID; SoldOut turns true on the call that takes the last unit, and every later call answers sold_out with no ID"},
			lawStock},
		{Law{"PerUserLimitOne",
			"with PerUserLimit 1 a user's second entry answers duplicate with no ID and takes no stock; SoldOut tells whether stock remains, and a user at the limit still hears duplicate after the sell-out"},
			lawLimitOne},
		{Law{"PerUserLimitTwo",
			"with PerUserLimit 2 a user is issued two units under two keys and the third entry answers duplicate; PerUserLimit 0 means 1"},
			lawLimitTwo},
		{Law{"RedeliveryGetsTheSameOutcome",
			"a redelivered key gets its first outcome back (issued, same ID), takes no stock and does not count again toward the user's limit; SoldOut is recomputed now, not replayed"},
			lawRedelivery},
		{Law{"RejectedKeyGetsTheSameAnswer",
			"a redelivered key first answered sold_out or duplicate is answered the same again, with no ID, and takes no stock"},
			lawRejectedKey},
		{Law{"DuplicateTakesNoStock",
			"an duplicate answer takes no stock: after any number of them, Stock distinct users are still issued"},
			lawDuplicateNoStock},
		{Law{"ConcurrentNeverOverIssues",
			"concurrent calls of more users than Stock issue exactly Stock units, none to a user twice, all under distinct IDs"},
			lawConcurrent},
		{Law{"ConcurrentUserNeverOverLimit",
			"concurrent calls of one user under distinct keys issue exactly PerUserLimit units"},
			lawConcurrentUser},
		{Law{"ConcurrentRedeliveriesIssueOnce",
			"concurrent calls with one key all answer issued with the same ID and take one unit"},
			lawConcurrentSameKey},
		{Law{"IssuedCountCountsUnits",
			"a Store that implements couponq.IssuedCounter counts each campaign's units issued: 0 before any, one per issuance, nothing for duplicate, sold_out or redelivered answers, and nothing of another campaign's"},
			lawIssuedCount},
		{Law{"CampaignsAreIndependent",
			"one campaign's stock, users and keys never affect another campaign's answers"},
			lawIndependent},
		{Law{"IncarnationsAreIndependent",
			"the store names of two incarnations of one campaign ID (couponq.Campaign.StoreCampaign: the ID, then ID~2) are two campaigns: a re-created ID starts with all its stock, no users and no keys, and IssuedCount counts each apart"},
			lawIncarnations},
		{Law{"CancelledContext",
			"a call whose context is already cancelled returns an error and decides nothing: it takes no stock and records no key"},
			lawCancelled},
		{Law{"InvalidRequestIsAnError",
			"a request with an empty Campaign, User or Key, or with Stock <= 0, returns an error and takes no stock"},
			lawInvalid},
	}

	batchLaws = []law{
		{Law{"Batch/OneAnswerPerRequest",
			"IssueBatch answers exactly one Issuance per request, at the request's index, as if Issue were called for each in turn"},
			lawBatchOnePerRequest},
		{Law{"Batch/SellsOutMidway",
			"a batch that runs out of stock answers issued up to the stock and sold_out after it, each SoldOut telling whether stock remained after that request"},
			lawBatchSellsOut},
		{Law{"Batch/SameKeyTwiceInOneBatch",
			"a key repeated within one batch answers issued with the same ID at both indexes and takes one unit"},
			lawBatchSameKey},
		{Law{"Batch/SameUserTwiceInOneBatch",
			"a user repeated within one batch under new keys is issued up to PerUserLimit (0 means 1) and then answered duplicate, which takes no stock"},
			lawBatchSameUser},
		{Law{"Batch/ReplayedBatchGetsTheSameOutcomes",
			"a batch sent again answers every index with its first outcome and ID and takes no stock; SoldOut is recomputed now"},
			lawBatchReplay},
		{Law{"Batch/MixedOutcomes",
			"one batch answers issued, duplicate (a user served by an earlier call), a redelivered key's first issuance and sold_out, each at its own index with its own SoldOut"},
			lawBatchMixed},
		{Law{"Batch/CampaignsAreIndependent",
			"a batch naming several campaigns decides each request against its own campaign's stock, users and keys, in slice order"},
			lawBatchIndependent},
		{Law{"Batch/AgreesWithIssue",
			"IssueBatch and Issue share stock, users and keys: a key decided by one is answered the same by the other"},
			lawBatchAgrees},
		{Law{"Batch/ConcurrentNeverOverIssues",
			"concurrent batches of more users than Stock issue exactly Stock units in total, none to a user twice, all under distinct IDs"},
			lawBatchConcurrent},
		{Law{"Batch/ConcurrentReplaysIssueOnce",
			"the same batch sent concurrently answers the same ID at each index every time and takes its stock once"},
			lawBatchConcurrentReplay},
		{Law{"Batch/EmptyBatch",
			"an empty (or nil) batch answers no issuances and no error"},
			lawBatchEmpty},
		{Law{"Batch/CancelledContext",
			"a batch whose context is already cancelled returns an error and decides nothing"},
			lawBatchCancelled},
		{Law{"Batch/InvalidRequestIsAnError",
			"a batch holding an invalid request (empty Campaign, User or Key, or Stock <= 0) returns an error"},
			lawBatchInvalid},
	}
)

// Laws returns every law Run checks, in order: first those of Store.Issue,
// then those of BatchStore.IssueBatch.
func Laws() []Law {
	out := make([]Law, 0, len(singleLaws)+len(batchLaws))
	for _, l := range singleLaws {
		out = append(out, l.Law)
	}
	for _, l := range batchLaws {
		out = append(out, l.Law)
	}
	return out
}

// Run checks every law as a subtest; newStore is called once per subtest.
// When the Stores newStore returns implement couponq.BatchStore, the
// batch-form laws run too, as subtests of "Batch".
func Run(t *testing.T, newStore func(t *testing.T) couponq.Store) {
	t.Helper()
	var batch atomic.Int32 // 0 unknown, 1 BatchStore, 2 not
	store := func(t *testing.T) couponq.Store {
		t.Helper()
		s := newStore(t)
		if s == nil {
			t.Fatal("storetest: newStore returned a nil Store")
		}
		if _, ok := s.(couponq.BatchStore); ok {
			batch.Store(1)
		} else {
			batch.Store(2)
		}
		return s
	}
	for _, l := range singleLaws {
		t.Run(l.Name, func(t *testing.T) { checkLaw(t, l, store(t)) })
	}
	t.Run("Batch", func(t *testing.T) {
		if batch.Load() == 2 {
			t.Skip("the Store does not implement couponq.BatchStore")
		}
		for _, l := range batchLaws {
			t.Run(strings.TrimPrefix(l.Name, "Batch/"), func(t *testing.T) {
				s := store(t)
				if _, ok := s.(couponq.BatchStore); !ok {
					t.Skipf("%T does not implement couponq.BatchStore", s)
				}
				checkLaw(t, l, s)
			})
		}
	})
}

// tb is the part of testing.TB the laws use, so the suite's own tests can
// check that a broken Store fails them.
type tb interface {
	Helper()
	Errorf(format string, args ...any)
	FailNow()
}

// checkLaw checks l against s, reporting to t.
func checkLaw(t tb, l law, s couponq.Store) {
	c := &checker{t: t, law: l.Law, s: s, ctx: context.Background(), ids: map[string]string{}}
	c.bs, _ = s.(couponq.BatchStore)
	l.check(c)
}

// checker runs one law against one Store. Its methods may be called from
// several goroutines, except fatalf and the helpers that call it.
type checker struct {
	t   tb
	law Law
	s   couponq.Store
	bs  couponq.BatchStore // nil unless s implements it
	ctx context.Context

	next atomic.Int64 // entry numbers of fresh users

	mu  sync.Mutex
	ids map[string]string // issuance ID -> the key it was first answered for
}

// errorf reports a broken law; the message names the law and quotes it.
func (c *checker) errorf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("law %s (%s): %s", c.law.Name, c.law.Text, fmt.Sprintf(format, args...))
}

// fatalf reports a broken law and ends the law's check. Only the goroutine
// running the law may call it.
func (c *checker) fatalf(format string, args ...any) {
	c.t.Helper()
	c.errorf(format, args...)
	c.t.FailNow()
}

var (
	// runID tells this process's campaigns from those of other runs, earlier
	// or concurrent, against the same database.
	runID       = newRunID()
	campaignSeq atomic.Int64
)

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// campaign returns a campaign ID no other law, and no other run, uses.
func (c *checker) campaign() string {
	return fmt.Sprintf("st-%s-%d", runID, campaignSeq.Add(1))
}

// req builds the request of entry number n of user in campaign, keyed like
// couponq.Entry.Key.
func req(campaign, user string, n, stock int64, limit int) couponq.IssueRequest {
	e := couponq.Entry{Campaign: campaign, User: user, Number: n}
	return couponq.IssueRequest{Campaign: campaign, User: user, Key: e.Key(), Stock: stock, PerUserLimit: limit}
}

// fresh returns the request of a user and entry number no other request of
// the law uses.
func (c *checker) fresh(campaign string, stock int64, limit int) couponq.IssueRequest {
	n := 1_000_000 + c.next.Add(1)
	return req(campaign, fmt.Sprintf("fresh%d", n), n, stock, limit)
}

// want is what a law expects the Store to answer.
type want struct {
	outcome couponq.Outcome
	id      string // for Issued: the ID the answer must carry; empty means any non-empty ID
	soldOut bool
}

// issued wants a new issuance; last tells whether it took the last unit.
func issued(last bool) want { return want{outcome: couponq.Issued, soldOut: last} }

// reissued wants the issuance named id back; gone tells whether the stock
// is gone by now.
func reissued(id string, gone bool) want {
	return want{outcome: couponq.Issued, id: id, soldOut: gone}
}

// duplicate wants duplicate; gone tells whether the stock is gone.
func duplicate(gone bool) want { return want{outcome: couponq.Duplicate, soldOut: gone} }

// soldOut wants sold_out.
func soldOut() want { return want{outcome: couponq.SoldOut, soldOut: true} }

func (w want) String() string {
	var b strings.Builder
	b.WriteString(w.outcome.String())
	switch {
	case w.outcome != couponq.Issued:
		b.WriteString(" with no ID")
	case w.id != "":
		fmt.Fprintf(&b, " with ID %q", w.id)
	default:
		b.WriteString(" with an ID")
	}
	fmt.Fprintf(&b, ", SoldOut %t", w.soldOut)
	return b.String()
}

func (w want) match(got couponq.Issuance) bool {
	if got.Outcome != w.outcome || got.SoldOut != w.soldOut {
		return false
	}
	if w.outcome != couponq.Issued {
		return got.ID == ""
	}
	return got.ID != "" && (w.id == "" || got.ID == w.id)
}

// show formats an Issuance for a failure message:
// {Outcome: issued, ID: "ab12", SoldOut: false}.
func show(iss couponq.Issuance) string {
	return fmt.Sprintf("{Outcome: %s, ID: %q, SoldOut: %t}", iss.Outcome, iss.ID, iss.SoldOut)
}

// showAll formats a batch's answers, one per index.
func showAll(iss []couponq.Issuance) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range iss {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %s", i, show(x))
	}
	b.WriteByte(']')
	return b.String()
}

// showReq formats an IssueRequest for a failure message.
func showReq(r couponq.IssueRequest) string {
	return fmt.Sprintf("{Campaign: %q, User: %q, Key: %q, Stock: %d, PerUserLimit: %d}",
		r.Campaign, r.User, r.Key, r.Stock, r.PerUserLimit)
}

// shape reports an answer no request may get, whatever the law: an unknown
// outcome, an issuance without an ID, a rejection with one, sold_out with
// SoldOut false, or an issuance ID already answered for another key. call
// names the call and the key, as in `second Issue of key "c/1/u"`.
func (c *checker) shape(call string, r couponq.IssueRequest, got couponq.Issuance) {
	c.t.Helper()
	switch {
	case got.Outcome != couponq.Issued && got.Outcome != couponq.Duplicate && got.Outcome != couponq.SoldOut:
		c.errorf("%s answered %s, an outcome that does not exist", call, show(got))
	case got.Outcome == couponq.Issued && got.ID == "":
		c.errorf("%s answered %s, an issuance without an ID", call, show(got))
	case got.Outcome != couponq.Issued && got.ID != "":
		c.errorf("%s answered %s, a rejection with an issuance ID", call, show(got))
	case got.Outcome == couponq.SoldOut && !got.SoldOut:
		c.errorf("%s answered %s: sold_out always comes with SoldOut true", call, show(got))
	case got.Outcome == couponq.Issued:
		c.mu.Lock()
		first, seen := c.ids[got.ID]
		if !seen {
			c.ids[got.ID] = r.Key
		}
		c.mu.Unlock()
		if seen && first != r.Key {
			c.errorf("%s answered %s, but ID %q was answered before for key %q: every issuance needs its own ID",
				call, show(got), got.ID, first)
		}
	}
}

// issue calls Issue, ends the law on an error, and checks the answer against
// w. call says which call this is ("second Issue"); the key is added.
func (c *checker) issue(r couponq.IssueRequest, w want, call string, args ...any) couponq.Issuance {
	c.t.Helper()
	call = fmt.Sprintf(call, args...)
	got, err := c.s.Issue(c.ctx, r)
	if err != nil {
		c.fatalf("%s of key %q failed: %v (request %s)", call, r.Key, err, showReq(r))
	}
	call = fmt.Sprintf("%s of key %q", call, r.Key)
	if !w.match(got) {
		c.errorf("%s answered %s, want %s", call, show(got), w)
	} else {
		c.shape(call, r, got)
	}
	return got
}

// batch calls IssueBatch, ends the law on an error or on an answer of the
// wrong length, and checks the answer at each index against ws (unless ws
// is nil).
func (c *checker) batch(rs []couponq.IssueRequest, ws []want, call string, args ...any) []couponq.Issuance {
	c.t.Helper()
	call = fmt.Sprintf(call, args...)
	got, err := c.bs.IssueBatch(c.ctx, rs)
	if err != nil {
		c.fatalf("%s of %d requests failed: %v", call, len(rs), err)
	}
	if len(got) != len(rs) {
		c.fatalf("%s of %d requests answered %d issuances %s, want one per request", call, len(rs), len(got), showAll(got))
	}
	for i, r := range rs {
		at := fmt.Sprintf("%s, index %d (key %q),", call, i, r.Key)
		if ws != nil && !ws[i].match(got[i]) {
			c.errorf("%s answered %s, want %s", at, show(got[i]), ws[i])
			continue
		}
		c.shape(at, r, got[i])
	}
	return got
}

// remaining checks that exactly n units of the campaign remain, issuing them
// to fresh users: the first n are issued (the nth with SoldOut true) and the
// next user answers sold_out. after says what happened before, for the
// message.
func (c *checker) remaining(campaign string, stock int64, n int, after string) {
	c.t.Helper()
	for i := 1; i <= n; i++ {
		r := c.fresh(campaign, stock, 1)
		got, err := c.s.Issue(c.ctx, r)
		if err != nil {
			c.fatalf("after %s, Issue of key %q failed: %v (request %s)", after, r.Key, err, showReq(r))
		}
		if w := issued(i == n); !w.match(got) {
			c.fatalf("after %s, %d units of the stock of %d should remain, but Issue %d of %d to a new user (key %q) answered %s, want %s",
				after, n, stock, i, n, r.Key, show(got), w)
		}
		c.shape(fmt.Sprintf("Issue of key %q", r.Key), r, got)
	}
	r := c.fresh(campaign, stock, 1)
	got, err := c.s.Issue(c.ctx, r)
	if err != nil {
		c.fatalf("after %s, Issue of key %q failed: %v (request %s)", after, r.Key, err, showReq(r))
	}
	if w := soldOut(); !w.match(got) {
		c.errorf("after %s, %d units of the stock of %d should remain, but a new user's Issue after those %d (key %q) answered %s, want %s",
			after, n, stock, n, r.Key, show(got), w)
	}
}

// tally counts a set of answers.
type tally struct {
	issued, duplicate, soldOut, other int
	soldOutFlag                       int // issued answers with SoldOut true
}

func (t *tally) add(iss couponq.Issuance) {
	switch iss.Outcome {
	case couponq.Issued:
		t.issued++
		if iss.SoldOut {
			t.soldOutFlag++
		}
	case couponq.Duplicate:
		t.duplicate++
	case couponq.SoldOut:
		t.soldOut++
	default:
		t.other++
	}
}

func (t tally) String() string {
	s := fmt.Sprintf("issued %d (%d with SoldOut true), duplicate %d, sold_out %d", t.issued, t.soldOutFlag, t.duplicate, t.soldOut)
	if t.other > 0 {
		s += fmt.Sprintf(", unknown outcomes %d", t.other)
	}
	return s
}

// gate releases goroutines at once, so concurrent calls really overlap.
type gate struct {
	ch chan struct{}
	wg sync.WaitGroup
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

// Go starts fn, which runs once open is called.
func (g *gate) Go(fn func()) { g.wg.Go(func() { <-g.ch; fn() }) }

// openAndWait releases every goroutine and waits for them.
func (g *gate) openAndWait() { close(g.ch); g.wg.Wait() }
