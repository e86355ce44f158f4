package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The reference Store passes the suite, batch laws included.
func TestRunMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) couponq.Store { return memory.NewStore() })
}

// Laws may run in parallel against one Store.
func TestRunParallel(t *testing.T) {
	s := memory.NewStore()
	storetest.Run(t, func(t *testing.T) couponq.Store {
		t.Parallel()
		return s
	})
}

// A Store without IssueBatch passes the laws of Issue; Batch is skipped.
func TestRunStoreWithoutBatch(t *testing.T) {
	storetest.Run(t, func(t *testing.T) couponq.Store {
		s := memory.NewStore()
		return couponq.StoreFunc(s.Issue)
	})
}

// recorder is a testing.T stand-in that records failures instead of
// failing the test, so a law can be run against a broken Store.
type recorder struct {
	mu     sync.Mutex
	errs   []string
	failed bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

// check runs the named law against s and returns what it reported.
func check(t *testing.T, name string, s couponq.Store) *recorder {
	t.Helper()
	r := &recorder{}
	found := true
	done := make(chan struct{})
	go func() { // FailNow ends this goroutine, as testing does
		defer close(done)
		found = storetest.CheckLaw(r, name, s)
	}()
	<-done
	if !found {
		t.Fatalf("no law named %q", name)
	}
	return r
}

func lawByName(t *testing.T, name string) storetest.Law {
	t.Helper()
	for _, l := range storetest.Laws() {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no law named %q", name)
	return storetest.Law{}
}

// A sound Store passes every law under the recorder, so a failure below is
// the flaw's doing, not the harness's or the test double's.
func TestSoundStoresPassEveryLaw(t *testing.T) {
	stores := map[string]func() couponq.Store{
		"memory":          func() couponq.Store { return memory.NewStore() },
		"flawed(nothing)": func() couponq.Store { return newFlawed(sound) },
	}
	for name, newStore := range stores {
		for _, l := range storetest.Laws() {
			if r := check(t, l.Name, newStore()); r.failed {
				t.Errorf("%s failed law %s:\n%s", name, l.Name, strings.Join(r.errs, "\n"))
			}
		}
	}
}

// Each flaw is a mistake a real Store makes; the suite must catch it under
// the laws listed, naming the law in the message.
var catches = []struct {
	flaw flaw
	laws []string
}{
	{cachesAnswer, []string{"RedeliveryGetsTheSameOutcome", "Batch/ReplayedBatchGetsTheSameOutcomes"}},
	{limitBeforeKey, []string{"RedeliveryGetsTheSameOutcome", "Batch/MixedOutcomes", "Batch/AgreesWithIssue"}},
	{replayCountsUser, []string{"RedeliveryGetsTheSameOutcome"}},
	{takesStockOnCancel, []string{"CancelledContext", "Batch/CancelledContext"}},
	{raceGap, []string{"ConcurrentNeverOverIssues", "ConcurrentUserNeverOverLimit", "ConcurrentRedeliveriesIssueOnce",
		"Batch/ConcurrentNeverOverIssues", "Batch/ConcurrentReplaysIssueOnce"}},
	{soldOutFlagNever, []string{"IssuesUpToStockThenSoldOut", "Batch/SellsOutMidway"}},
	{constantID, []string{"IssuesUpToStockThenSoldOut", "Batch/OneAnswerPerRequest"}},
	{stockBeforeLimit, []string{"PerUserLimitOne"}},
	{limitAlwaysOne, []string{"PerUserLimitTwo", "Batch/SameUserTwiceInOneBatch"}},
	{zeroLimitUnlimited, []string{"PerUserLimitTwo", "Batch/SameUserTwiceInOneBatch"}},
	{duplicateTakesStock, []string{"PerUserLimitOne", "DuplicateTakesNoStock", "Batch/SameUserTwiceInOneBatch"}},
	{recordsRejectedKey, []string{"RejectedKeyGetsTheSameAnswer"}},
	{sharedStock, []string{"CampaignsAreIndependent", "Batch/CampaignsAreIndependent"}},
	{noValidation, []string{"InvalidRequestIsAnError", "Batch/InvalidRequestIsAnError"}},
	{batchFlagsAtEnd, []string{"Batch/SellsOutMidway", "Batch/MixedOutcomes"}},
	{batchSnapshot, []string{"Batch/SameKeyTwiceInOneBatch", "Batch/SameUserTwiceInOneBatch"}},
	{batchDropsSoldOut, []string{"Batch/OneAnswerPerRequest", "Batch/SellsOutMidway"}},
	{batchGroupsByCampaign, []string{"Batch/CampaignsAreIndependent"}},
	{batchOwnKeys, []string{"Batch/AgreesWithIssue"}},
	{batchEmptyIsAnError, []string{"Batch/EmptyBatch"}},
	{batchIgnoresContext, []string{"Batch/CancelledContext"}},
	{countsAnswers, []string{"IssuedCountCountsUnits"}},
	{stripsIncarnation, []string{"IncarnationsAreIndependent"}},
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	for _, tc := range catches {
		for _, name := range tc.laws {
			t.Run(tc.flaw.String()+"/"+name, func(t *testing.T) {
				l := lawByName(t, name)
				r := check(t, name, newFlawed(tc.flaw))
				if !r.failed {
					t.Fatalf("a Store that %s passed law %s", tc.flaw, name)
				}
				prefix := "law " + l.Name + " (" + l.Text + "): "
				for _, msg := range r.errs {
					if !strings.HasPrefix(msg, prefix) {
						t.Errorf("message does not start by naming and quoting the law:\n%s", msg)
					}
				}
				t.Logf("%s:\n%s", tc.flaw, strings.Join(r.errs, "\n"))
			})
		}
	}
}

// Every law has a broken Store that fails it: no law is vacuous.
func TestEveryLawCanFail(t *testing.T) {
	caught := map[string]bool{}
	for _, tc := range catches {
		for _, name := range tc.laws {
			caught[name] = true
		}
	}
	for _, l := range storetest.Laws() {
		if !caught[l.Name] {
			t.Errorf("no broken Store in the table fails law %s", l.Name)
		}
	}
}

// The two failures the issue reported read as the law and the answer.
func TestFailureMessages(t *testing.T) {
	answer := `\{Outcome: [a-z_]+, ID: "[0-9a-z]*", SoldOut: (true|false)\}`
	for _, tc := range []struct {
		flaw flaw
		law  string
		want string // a regexp one message must match
	}{
		{cachesAnswer, "RedeliveryGetsTheSameOutcome",
			`after other users sold the campaign out, the fourth Issue of key "[^"]+/1/u" answered \{Outcome: issued, ID: "(id[0-9]+)", SoldOut: false\}, want issued with ID "id[0-9]+", SoldOut true$`},
		{limitBeforeKey, "RedeliveryGetsTheSameOutcome",
			`with stock left, the second Issue of key "[^"]+/1/u" answered \{Outcome: duplicate, ID: "", SoldOut: false\}, want issued with ID "id[0-9]+", SoldOut false$`},
		{takesStockOnCancel, "CancelledContext",
			`after a cancelled call, user v's Issue \(the stock of 1\) of key "[^"]+" answered \{Outcome: sold_out, ID: "", SoldOut: true\}, want issued with an ID, SoldOut true$`},
		{raceGap, "ConcurrentNeverOverIssues",
			`400 concurrent Issues of 200 users answered issued [0-9]+ .*; want exactly the stock of 50 issued$`},
		{batchFlagsAtEnd, "Batch/SellsOutMidway",
			`IssueBatch of 5 users \(stock 3\), index 0 \(key "[^"]+"\), answered ` + answer + `, want issued with an ID, SoldOut false$`},
	} {
		r := check(t, tc.law, newFlawed(tc.flaw))
		re := regexp.MustCompile(tc.want)
		if !slices.ContainsFunc(r.errs, re.MatchString) {
			t.Errorf("a Store that %s: no message of law %s matches %s; got:\n%s", tc.flaw, tc.law, tc.want, strings.Join(r.errs, "\n"))
		}
	}
}

func TestLaws(t *testing.T) {
	laws := storetest.Laws()
	seen := map[string]bool{}
	for _, l := range laws {
		if seen[l.Name] {
			t.Errorf("law %s twice", l.Name)
		}
		seen[l.Name] = true
		if l.Text == "" || strings.HasSuffix(l.Text, ".") {
			t.Errorf("law %s: text %q should be one clause without a final period", l.Name, l.Text)
		}
		if strings.Contains(strings.TrimPrefix(l.Name, "Batch/"), "/") || strings.ContainsAny(l.Name, " \t") {
			t.Errorf("law %s: names are one subtest level (two under Batch/), without spaces", l.Name)
		}
	}
	// Hosts select these subtests by name; they must keep their names.
	for _, name := range []string{
		"IssuesUpToStockThenSoldOut", "PerUserLimitOne", "PerUserLimitTwo", "RedeliveryGetsTheSameOutcome",
		"ConcurrentNeverOverIssues", "ConcurrentRedeliveriesIssueOnce", "CampaignsAreIndependent", "CancelledContext",
	} {
		if !seen[name] {
			t.Errorf("law %s is gone", name)
		}
	}
	laws[0].Name = "changed"
	if storetest.Laws()[0].Name == "changed" {
		t.Error("Laws returns the suite's own slice")
	}
}

// The package doc lists every law with the text failure messages quote.
func TestDocListsEveryLaw(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	for line := range strings.Lines(string(src)) {
		if text, ok := strings.CutPrefix(line, "//"); ok {
			doc.WriteString(strings.TrimSpace(text))
			doc.WriteByte(' ')
		}
	}
	text := doc.String()
	for _, l := range storetest.Laws() {
		if item := "- " + l.Name + ": " + l.Text + "."; !strings.Contains(text, item) {
			t.Errorf("doc.go does not list %q", item)
		}
	}
}

func TestBench(t *testing.T) {
	ctx := context.Background()
	t.Run("Issue", func(t *testing.T) {
		r, err := storetest.Bench(ctx, memory.NewStore(), storetest.BenchOptions{Concurrency: 8, Requests: 2000, Stock: 500, Users: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 2000 || r.Calls != 2000 || r.Batched || r.Issued != 500 || r.Duplicate+r.SoldOut != 1500 || r.Errors != 0 {
			t.Errorf("got %v", r)
		}
		if r.Elapsed <= 0 || r.Throughput <= 0 || r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
			t.Errorf("timings: %v", r)
		}
	})
	t.Run("IssueBatch", func(t *testing.T) {
		r, err := storetest.Bench(ctx, memory.NewStore(), storetest.BenchOptions{
			Concurrency: 4, Requests: 2010, Campaigns: 3, Stock: 600, Users: 400, PerUserLimit: 2, BatchSize: 50,
		})
		if err != nil {
			t.Fatal(err)
		}
		// 670 requests per campaign from 400 users: 270 users ask twice, so
		// 670 could be issued; the stock of 600 per campaign runs out first.
		if !r.Batched || r.Calls != 41 || r.Requests != 2010 || r.Issued != 1800 {
			t.Errorf("got %v", r)
		}
	})
	t.Run("StoreWithoutBatch", func(t *testing.T) {
		r, err := storetest.Bench(ctx, couponq.StoreFunc(memory.NewStore().Issue), storetest.BenchOptions{Requests: 100, BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r.Batched || r.Calls != 100 || r.Issued != 100 {
			t.Errorf("got %v", r)
		}
	})
	t.Run("Duration", func(t *testing.T) {
		start := time.Now()
		r, err := storetest.Bench(ctx, memory.NewStore(), storetest.BenchOptions{Duration: 50 * time.Millisecond, Users: 10, PerUserLimit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.Issued != min(30, r.Requests) || time.Since(start) > 5*time.Second {
			t.Errorf("got %v", r)
		}
	})
	t.Run("OverIssuingStore", func(t *testing.T) {
		r, err := storetest.Bench(ctx, newFlawed(raceGap), storetest.BenchOptions{Concurrency: 32, Requests: 300, Stock: 20})
		if !errors.Is(err, storetest.ErrLawBroken) || !strings.Contains(err.Error(), "above its stock of 20") {
			t.Errorf("Bench of an over-issuing Store answered %v, %v; want ErrLawBroken", r, err)
		}
	})
	t.Run("UnderIssuingStore", func(t *testing.T) {
		m := memory.NewStore()
		lossy := couponq.StoreFunc(func(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
			if strings.HasSuffix(r.User, "7") { // answers sold_out with stock left
				return couponq.Issuance{Outcome: couponq.SoldOut, SoldOut: true}, nil
			}
			return m.Issue(ctx, r)
		})
		r, err := storetest.Bench(ctx, lossy, storetest.BenchOptions{Requests: 300, Stock: 1000})
		if !errors.Is(err, storetest.ErrLawBroken) || !strings.Contains(err.Error(), "270 of 300 requests issued, want 300") {
			t.Errorf("Bench of a Store that loses stock answered %v, %v; want ErrLawBroken", r, err)
		}
	})
	t.Run("StoreError", func(t *testing.T) {
		boom := errors.New("boom")
		s := couponq.StoreFunc(func(context.Context, couponq.IssueRequest) (couponq.Issuance, error) { return couponq.Issuance{}, boom })
		r, err := storetest.Bench(ctx, s, storetest.BenchOptions{Requests: 100})
		if !errors.Is(err, boom) || r.Errors == 0 || r.Requests != 0 {
			t.Errorf("got %v, %v; want boom", r, err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := storetest.Bench(ctx, memory.NewStore(), storetest.BenchOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("BadOptions", func(t *testing.T) {
		if _, err := storetest.Bench(ctx, memory.NewStore(), storetest.BenchOptions{Concurrency: -1}); err == nil {
			t.Error("negative Concurrency accepted")
		}
		if _, err := storetest.Bench(ctx, nil, storetest.BenchOptions{}); err == nil {
			t.Error("nil Store accepted")
		}
	})
}

func BenchmarkMemoryStore(b *testing.B) {
	b.Run("Issue", func(b *testing.B) {
		storetest.BenchmarkStore(b, memory.NewStore(), storetest.BenchOptions{Concurrency: 16})
	})
	b.Run("IssueBatch", func(b *testing.B) {
		storetest.BenchmarkStore(b, memory.NewStore(), storetest.BenchOptions{Concurrency: 16, BatchSize: 100})
	})
}

// flaw is one mistake a Store can make.
type flaw int

const (
	sound                 flaw = iota
	cachesAnswer               // replays the first answer whole, SoldOut included
	limitBeforeKey             // checks the user's limit before the key, so a redelivery hears duplicate
	replayCountsUser           // counts a redelivery toward the user's limit
	takesStockOnCancel         // decides, then notices the cancelled context
	raceGap                    // checks, releases the lock, then writes
	soldOutFlagNever           // never sets SoldOut on an issuance
	constantID                 // answers every issuance with the same ID
	stockBeforeLimit           // answers sold_out before duplicate
	limitAlwaysOne             // ignores PerUserLimit
	zeroLimitUnlimited         // reads PerUserLimit 0 as no limit
	duplicateTakesStock        // counts an duplicate answer against the stock
	recordsRejectedKey         // records a rejected key as issued, without an ID
	sharedStock                // counts the stock of all campaigns together
	noValidation               // accepts empty IDs and Stock <= 0
	batchFlagsAtEnd            // sets every SoldOut of a batch from the state after it
	batchSnapshot              // reads keys and users once before the batch, not as it goes
	batchDropsSoldOut          // leaves sold_out answers out of a batch's result
	batchGroupsByCampaign      // answers a batch grouped by campaign, not by index
	batchOwnKeys               // keeps the keys of IssueBatch apart from those of Issue
	batchEmptyIsAnError        // refuses an empty batch
	batchIgnoresContext        // decides a batch whatever its context
	countsAnswers              // IssuedCount counts every answer, not the units issued
	stripsIncarnation          // files every incarnation of an ID (ID~n) under the ID
)

func (f flaw) String() string {
	return [...]string{
		"is sound", "caches answers", "checks the limit before the key", "counts replays toward the limit",
		"takes stock on cancel", "races check and write", "never sets SoldOut", "reuses one ID",
		"checks stock before limit", "ignores PerUserLimit", "reads limit 0 as unlimited", "takes stock for duplicates",
		"records rejected keys", "shares stock across campaigns", "skips validation", "sets batch flags at the end",
		"snapshots a batch's keys and users", "drops sold_out from batches", "groups batch answers by campaign",
		"keeps batch keys apart", "refuses empty batches", "ignores a batch's context",
		"counts answers as units", "strips the incarnation from campaign names",
	}[f]
}

// flawed is a mutex-and-maps Store with one flaw; with none it is sound.
type flawed struct {
	flaw   flaw
	mu     sync.Mutex
	camps  map[string]*camp
	shared int64 // the one stock counter under sharedStock
	ids    int
}

type camp struct {
	issued     int64
	answers    int64 // calls answered, for countsAnswers
	users      map[string]int
	keys       map[string]couponq.Issuance // key -> first answer
	batchKeys  map[string]couponq.Issuance // under batchOwnKeys
	snapUsers  map[string]int              // under batchSnapshot, while a batch runs
	snapKeys   map[string]couponq.Issuance
	inSnapshot bool
}

var _ couponq.BatchStore = (*flawed)(nil)

func newFlawed(f flaw) *flawed { return &flawed{flaw: f, camps: map[string]*camp{}} }

func (s *flawed) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	if err := s.begin(ctx, []couponq.IssueRequest{r}); err != nil {
		return couponq.Issuance{}, err
	}
	iss := s.issue(r, false)
	if s.flaw == takesStockOnCancel && ctx.Err() != nil {
		return couponq.Issuance{}, ctx.Err()
	}
	return iss, nil
}

func (s *flawed) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	if len(rs) == 0 && s.flaw == batchEmptyIsAnError {
		return nil, errors.New("empty batch")
	}
	if s.flaw != batchIgnoresContext {
		if err := s.begin(ctx, rs); err != nil {
			return nil, err
		}
	} else if err := s.begin(context.Background(), rs); err != nil {
		return nil, err
	}
	order := rs
	if s.flaw == batchGroupsByCampaign {
		order = slices.Clone(rs)
		slices.SortStableFunc(order, func(a, b couponq.IssueRequest) int { return strings.Compare(a.Campaign, b.Campaign) })
	}
	if s.flaw == batchSnapshot {
		s.snapshot(rs, true)
		defer s.snapshot(rs, false)
	}
	out := make([]couponq.Issuance, 0, len(rs))
	for _, r := range order {
		iss := s.issue(r, true)
		if s.flaw == batchDropsSoldOut && iss.Outcome == couponq.SoldOut {
			continue
		}
		out = append(out, iss)
	}
	if s.flaw == batchFlagsAtEnd {
		s.mu.Lock()
		for i, r := range rs {
			out[i].SoldOut = s.camp(r.Campaign).issued >= r.Stock
		}
		s.mu.Unlock()
	}
	if s.flaw == takesStockOnCancel && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

// begin checks the context and the requests.
func (s *flawed) begin(ctx context.Context, rs []couponq.IssueRequest) error {
	if s.flaw != takesStockOnCancel {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if s.flaw == noValidation {
		return nil
	}
	for _, r := range rs {
		if r.Campaign == "" || r.User == "" || r.Key == "" || r.Stock <= 0 {
			return fmt.Errorf("invalid request %+v", r)
		}
	}
	return nil
}

func (s *flawed) camp(id string) *camp {
	if s.flaw == stripsIncarnation {
		id, _, _ = strings.Cut(id, "~")
	}
	c := s.camps[id]
	if c == nil {
		c = &camp{users: map[string]int{}, keys: map[string]couponq.Issuance{}, batchKeys: map[string]couponq.Issuance{}}
		s.camps[id] = c
	}
	return c
}

func (s *flawed) snapshot(rs []couponq.IssueRequest, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		c := s.camp(r.Campaign)
		c.inSnapshot = on
		if on {
			c.snapUsers, c.snapKeys = maps.Clone(c.users), maps.Clone(c.keys)
		}
	}
}

// issue decides r under the lock and writes its effects, releasing the lock
// in between under raceGap.
// IssuedCount implements couponq.IssuedCounter.
func (s *flawed) IssuedCount(_ context.Context, campaign string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.camps[campaign]
	switch {
	case c == nil:
		return 0, nil
	case s.flaw == countsAnswers:
		return c.answers, nil
	}
	return c.issued, nil
}

func (s *flawed) issue(r couponq.IssueRequest, batch bool) couponq.Issuance {
	s.mu.Lock()
	iss, apply := s.decide(r, batch)
	if c := s.camps[r.Campaign]; c != nil {
		c.answers++
	}
	if s.flaw == raceGap && apply != nil {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	if apply != nil {
		apply()
	}
	s.mu.Unlock()
	return iss
}

// decide answers r and returns the writes the answer makes; s.mu is held.
func (s *flawed) decide(r couponq.IssueRequest, batch bool) (couponq.Issuance, func()) {
	c := s.camp(r.Campaign)
	count := &c.issued
	if s.flaw == sharedStock {
		count = &s.shared
	}
	keys, held := c.keys, c.users[r.User]
	if batch && s.flaw == batchOwnKeys {
		keys = c.batchKeys
	}
	lookup := keys
	if c.inSnapshot {
		lookup, held = c.snapKeys, c.snapUsers[r.User]
	}
	limit := max(r.PerUserLimit, 1)
	switch {
	case s.flaw == limitAlwaysOne:
		limit = 1
	case s.flaw == zeroLimitUnlimited && r.PerUserLimit == 0:
		limit = math.MaxInt
	}
	gone := func(n int64) bool { return n >= r.Stock }
	duplicate := couponq.Issuance{Outcome: couponq.Duplicate, SoldOut: gone(*count)}
	soldOut := couponq.Issuance{Outcome: couponq.SoldOut, SoldOut: true}
	reject := func(iss couponq.Issuance) (couponq.Issuance, func()) {
		switch s.flaw {
		case recordsRejectedKey:
			return iss, func() { keys[r.Key] = couponq.Issuance{Outcome: couponq.Issued} }
		case duplicateTakesStock:
			if iss.Outcome == couponq.Duplicate {
				return iss, func() { *count++ }
			}
		}
		return iss, nil
	}

	if s.flaw == limitBeforeKey && held >= limit {
		return duplicate, nil
	}
	if first, ok := lookup[r.Key]; ok {
		if s.flaw == cachesAnswer {
			return first, nil
		}
		iss := couponq.Issuance{Outcome: couponq.Issued, ID: first.ID, SoldOut: gone(*count)}
		if s.flaw == replayCountsUser {
			return iss, func() { c.users[r.User]++ }
		}
		return iss, nil
	}
	if s.flaw == stockBeforeLimit && gone(*count) {
		return soldOut, nil
	}
	if held >= limit {
		return reject(duplicate)
	}
	if gone(*count) {
		return reject(soldOut)
	}
	s.ids++
	id := fmt.Sprintf("id%d", s.ids)
	if s.flaw == constantID {
		id = "same"
	}
	iss := couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: gone(*count+1) && s.flaw != soldOutFlagNever}
	return iss, func() {
		*count++
		c.users[r.User]++
		keys[r.Key] = iss
	}
}
