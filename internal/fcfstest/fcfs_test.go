package fcfstest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/kafkatest"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

const (
	partitions = 8  // of the run's topic
	workers    = 3  // worker nodes: three consumers of one group over the partitions
	callers    = 64 // goroutines calling Admit at once
	interval   = 20 * time.Millisecond
	drainLimit = 60 * time.Second // the most one sale may take to decide everyone
)

// fleet is the production shape in one process: one API node and three
// worker nodes sharing the redisq Backend and the redisstore Store, each
// with its own Kafka transport (one consumer group). One worker's
// scheduler leads; all three consume.
type fleet struct {
	api   *node.Node
	store *redisstore.Store
}

func newFleet(t *testing.T) *fleet {
	brokers := kafkatest.Brokers(t)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	topic := kafkatest.Topic(t, brokers, partitions)
	group := topic + "-issuers"

	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: prefix})
	require.NoError(t, err)
	store, err := redisstore.New(redisstore.Config{Client: rdb, Prefix: prefix})
	require.NoError(t, err)
	transports := make([]*kafkadispatch.Transport, 1+workers) // the API node's (V1 hands entries on from the request), then the workers'
	for i := range transports {
		tr, err := kafkadispatch.New(kafkadispatch.Config{Brokers: brokers, Topic: topic, Group: group, ConfigMap: kafkatest.Config(brokers)})
		require.NoError(t, err)
		t.Cleanup(tr.Close) // after the nodes stop (cleanups run last first)
		transports[i] = tr
	}

	var nodes []*node.Node
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { assert.NoError(t, n.Stop(ctx), "stop %s node", n.Roles()) })
		}
		wg.Wait()
	})
	start := func(roles node.Role, tr *kafkadispatch.Transport) *node.Node {
		n, err := node.New(node.Config{
			Roles: roles, Backend: backend, Transport: tr, Store: store,
			CacheTTL: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		})
		require.NoError(t, err)
		require.NoError(t, n.Start(t.Context()))
		nodes = append(nodes, n)
		return n
	}
	f := &fleet{api: start(node.RoleAPI, transports[0]), store: store}
	for _, tr := range transports[1:] {
		start(node.RoleWorker, tr)
	}
	require.NoError(t, kafkatest.WaitGroupStable(t.Context(), kafkatest.Config(brokers), group, workers, partitions))
	return f
}

// sale is one case: a fresh campaign, paused while its whole crowd joins
// the line, then resumed.
type sale struct {
	stock int64
	batch int
	users int
	limit int // the per-user limit; 0 means 1
}

// user is one member of a sale's crowd.
type user struct {
	name   string
	before int  // units held in the Store before the sale, issued outside the line
	twice  bool // presses twice
	entry  int64
	status couponq.Status
}

// TestFirstComeFirstServed is the conformance test of the exact cutoff on
// Redis and Kafka: the stock goes to the head of the line, so nobody is
// told sold out while someone admitted after them holds a unit (an
// inversion). It also runs V1 through the same fleet and reports, without
// asserting, how far its outcomes stray from call order.
func TestFirstComeFirstServed(t *testing.T) {
	f := newFleet(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	for _, s := range []sale{
		{stock: 1050, batch: 100, users: 3000},
		{stock: 537, batch: 100, users: 2000},
		{stock: 400, batch: 100, users: 1500, limit: 2},
	} {
		name := fmt.Sprintf("stock=%d/batch=%d/users=%d", s.stock, s.batch, s.users)
		if s.limit > 1 {
			name += fmt.Sprintf("/limit=%d", s.limit)
		}
		t.Run(name, func(t *testing.T) { f.run(t, s, rng) })
	}
	t.Run("v1", func(t *testing.T) { f.runV1(t, 1050, 3000) })
}

func (f *fleet) run(t *testing.T, s sale, rng *rand.Rand) {
	ctx := t.Context()
	limit := max(s.limit, 1)
	id := fmt.Sprintf("fcfs-%d-%d-%d", s.stock, s.batch, limit)
	_, err := f.api.CreateCampaign(ctx, couponq.Campaign{
		ID: id, Stock: s.stock, BatchSize: s.batch, Interval: interval, PerUserLimit: limit, Paused: true,
	})
	require.NoError(t, err)

	// The crowd: 3% already hold their limit (issued before the sale, not
	// through the line); with a limit above 1, another 3% hold one unit
	// less; a fifth press twice.
	users := make([]*user, s.users)
	prior := 0
	for i := range users {
		u := &user{name: fmt.Sprintf("u-%05d", i), twice: rng.IntN(5) == 0}
		switch r := rng.IntN(100); {
		case r < 3:
			u.before = limit
		case r < 6 && limit > 1:
			u.before = limit - 1
		}
		for k := range u.before {
			iss, err := f.store.Issue(ctx, couponq.IssueRequest{
				Campaign: id, User: u.name, Key: fmt.Sprintf("earlier/%s/%d", u.name, k), Stock: s.stock, PerUserLimit: limit,
			})
			require.NoError(t, err)
			require.Equal(t, couponq.Issued, iss.Outcome, "%s's earlier unit %d", u.name, k)
			prior++
		}
		users[i] = u
	}
	require.Less(t, int64(prior), s.stock, "the earlier units leave stock for the line")

	// Everyone joins while the campaign is paused, so the whole line is
	// there before anyone is served.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(users)); i = next.Add(1) - 1 {
				u := users[i]
				tk, err := f.api.Admit(ctx, couponq.Request{Campaign: id, User: u.name})
				if err != nil || tk.Repeat || tk.Entry <= 0 {
					t.Errorf("admit %s: %+v, %v", u.name, tk, err)
					continue
				}
				u.entry = tk.Entry
				if !u.twice {
					continue
				}
				again, err := f.api.Admit(ctx, couponq.Request{Campaign: id, User: u.name})
				if err != nil || !again.Repeat || again.Entry != tk.Entry || again.State != couponq.StateWaiting {
					t.Errorf("%s pressed again: want the same waiting ticket (entry %d) with Repeat, got %+v, %v", u.name, tk.Entry, again, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := make(map[int64]bool, len(users))
	for _, u := range users {
		seen[u.entry] = true
	}
	for e := int64(1); e <= int64(len(users)); e++ {
		require.True(t, seen[e], "entry numbers run 1 to %d without gaps: %d is missing", len(users), e)
	}

	resumed := time.Now()
	c, err := f.api.ResumeCampaign(ctx, id)
	require.NoError(t, err)
	require.False(t, c.Paused)
	deadline := resumed.Add(drainLimit)
	var st couponq.LineStats
	for {
		st, err = f.api.LineStats(ctx, id)
		if err == nil && st.Waiting == 0 && st.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained %s after resuming: %+v, %v", drainLimit, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	drain := time.Since(resumed)
	f.readStatuses(t, id, users, deadline)

	// Every outcome is final and has a reason a line user can have: issued,
	// sold out, or duplicate for those who held their limit already.
	var lastIssued, firstSoldOut int64 = 0, int64(len(users)) + 1
	issued, soldOut, duplicates := 0, 0, 0
	for _, u := range users {
		switch {
		case u.status.State == couponq.StateIssued && u.before < limit:
			issued++
			lastIssued = max(lastIssued, u.entry)
		case u.status.State == couponq.StateRejected && u.status.Reason == couponq.CodeSoldOut:
			soldOut++
			firstSoldOut = min(firstSoldOut, u.entry)
		case u.status.State == couponq.StateRejected && u.status.Reason == couponq.CodeDuplicate && u.before == limit:
			duplicates++
		default:
			t.Errorf("%s (entry %d, %d units before the sale, limit %d) ended %s/%s", u.name, u.entry, u.before, limit, u.status.State, u.status.Reason)
		}
	}

	// The cutoff: a user told sold out below the last issued entry is an
	// inversion, counted once however many later users hold a unit.
	var inversions []*user
	for _, u := range users {
		if u.status.State == couponq.StateRejected && u.status.Reason == couponq.CodeSoldOut && u.entry < lastIssued {
			inversions = append(inversions, u)
		}
	}
	slices.SortFunc(inversions, func(a, b *user) int { return int(a.entry - b.entry) })
	laterIssued := 0 // users issued although someone ahead of them heard sold out
	for _, u := range users {
		if u.status.State == couponq.StateIssued && u.entry > firstSoldOut {
			laterIssued++
		}
	}

	// Users who held their limit before the sale are never issued; those
	// the Store saw (every one ahead of the last issued entry: the line is
	// leased from its head) hear duplicate. Behind the cutoff, the sold-out
	// campaign's waiting entries are resolved in bulk, without the Store,
	// as sold out.
	lateHolders := 0
	for _, u := range users {
		if u.before < limit {
			continue
		}
		if u.entry < lastIssued {
			assert.Equal(t, couponq.CodeDuplicate, u.status.Reason, "%s held %d units before the sale and is ahead of the last issued entry %d: %+v", u.name, u.before, lastIssued, u.status)
		} else if u.status.Reason == couponq.CodeSoldOut {
			lateHolders++
		}
	}

	stored, err := f.store.IssuedCount(ctx, id)
	require.NoError(t, err)
	holders, err := f.store.Holders(ctx, id)
	require.NoError(t, err)
	var over, mismatched []string
	for name, n := range holders {
		if n > limit {
			over = append(over, fmt.Sprintf("%s holds %d", name, n))
		}
	}
	for _, u := range users {
		want := u.before
		if u.status.State == couponq.StateIssued {
			want++
		}
		if holders[u.name] != want {
			mismatched = append(mismatched, fmt.Sprintf("%s holds %d, held %d before and is %s", u.name, holders[u.name], u.before, u.status.State))
		}
	}
	assert.Empty(t, over, "users over the per-user limit %d", limit)
	assert.Empty(t, mismatched, "the Store's holdings are what users held before the sale plus what the line issued them")

	t.Logf("fcfs: stock %d batch %d users %d partitions %d consumers %d: issued %d, inversions %d, drain %d ms",
		s.stock, s.batch, s.users, partitions, workers, stored, len(inversions), drain.Milliseconds())
	t.Logf("fcfs:   limit %d; %d units held before the sale + %d issued through the line; %d sold out (%d of them behind the last issued entry #%d, first sold out #%d), %d issued behind the first sold out; %d duplicates (+%d holders resolved sold out behind the cutoff)",
		limit, prior, issued, soldOut, soldOut-len(inversions), lastIssued, firstSoldOut, laterIssued, duplicates, lateHolders)

	assert.Equal(t, s.stock, stored, "the Store issued exactly the stock")
	assert.Equal(t, int(s.stock)-prior, issued, "the line issued the stock the earlier units left")
	assert.EqualValues(t, issued, st.Issued, "the line's issued count")
	assert.True(t, st.SoldOut, "the campaign is marked sold out")
	if len(inversions) > 0 {
		var some []string
		for _, u := range inversions[:min(len(inversions), 8)] {
			some = append(some, fmt.Sprintf("%s #%d", u.name, u.entry))
		}
		t.Errorf("%d inversions: users told sold out while a user admitted after them holds a unit (the last issued is #%d; %d were issued behind the first sold out, #%d); the first: %s",
			len(inversions), lastIssued, laterIssued, firstSoldOut, strings.Join(some, ", "))
	}
}

// readStatuses reads every user's status, which must be terminal by
// deadline.
func (f *fleet) readStatuses(t *testing.T, campaign string, users []*user, deadline time.Time) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(users)); i = next.Add(1) - 1 {
				u := users[i]
				for {
					st, err := f.api.Status(t.Context(), campaign, u.name)
					if err == nil && st.State.Terminal() {
						u.status = st
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("%s never reached an outcome: %+v, %v", u.name, st, err)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// runV1 measures V1 (validate-first): callers goroutines call Admit at
// once, users numbered by the order their call started. V1 decides in the
// request (a lock per user, the Tally's counter), so a user whose call
// started earlier can lose the last units to one whose call started later;
// the test reports how many, and asserts only the stock.
func (f *fleet) runV1(t *testing.T, stock int64, crowd int) {
	ctx := t.Context()
	id := fmt.Sprintf("fcfs-v1-%d", stock)
	_, err := f.api.CreateCampaign(ctx, couponq.Campaign{ID: id, Stock: stock, Mode: couponq.ValidateFirst, Interval: interval})
	require.NoError(t, err)

	users := make([]*user, crowd)
	admitted := make([]bool, crowd)
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(crowd); i = next.Add(1) - 1 { // i: the order the call started
				u := &user{name: fmt.Sprintf("v-%05d", i)}
				users[i] = u
				_, err := f.api.Admit(ctx, couponq.Request{Campaign: id, User: u.name})
				switch {
				case err == nil:
					admitted[i] = true
				case errors.Is(err, couponq.ErrSoldOut):
					u.status = couponq.Status{State: couponq.StateRejected, Reason: couponq.CodeSoldOut}
				default:
					t.Errorf("v1 admit %s: %v", u.name, err)
				}
			}
		})
	}
	wg.Wait()
	calls := time.Since(began)
	if t.Failed() {
		t.FailNow()
	}
	var through []*user
	for i, u := range users {
		if admitted[i] {
			through = append(through, u)
		}
	}
	f.readStatuses(t, id, through, time.Now().Add(drainLimit))

	lastIssued, firstSoldOut := -1, crowd
	issued := 0
	for i, u := range users {
		switch {
		case u.status.State == couponq.StateIssued:
			issued++
			lastIssued = i
		case u.status.State == couponq.StateRejected && u.status.Reason == couponq.CodeSoldOut:
			firstSoldOut = min(firstSoldOut, i)
		default:
			t.Errorf("v1 %s ended %s/%s", u.name, u.status.State, u.status.Reason)
		}
	}
	inversions := 0 // sold out, though their call started before that of a user who got a unit
	for _, u := range users[:max(lastIssued, 0)] {
		if u.status.State == couponq.StateRejected {
			inversions++
		}
	}
	stored, err := f.store.IssuedCount(ctx, id)
	require.NoError(t, err)
	t.Logf("fcfs: v1 stock %d users %d concurrent calls %d partitions %d consumers %d: issued %d, inversions %d (told sold out though their call started before that of a user who got a unit; first sold out started #%d, last issued #%d), calls %d ms",
		stock, crowd, callers, partitions, workers, stored, inversions, firstSoldOut, lastIssued, calls.Milliseconds())
	assert.Equal(t, stock, stored, "the Store issued exactly the stock")
	assert.EqualValues(t, stock, issued, "every unit V1 let through was issued")
}
