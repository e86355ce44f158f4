package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startNode builds a node from cfg, starts it and stops it at the test's end.
func startNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	return n
}

func createCampaign(t *testing.T, n *node.Node, c couponq.Campaign) couponq.Campaign {
	t.Helper()
	created, err := n.CreateCampaign(t.Context(), c)
	require.NoError(t, err)
	return created
}

func waitTerminal(t *testing.T, n *node.Node, campaign, user string) couponq.Status {
	t.Helper()
	var st couponq.Status
	require.Eventually(t, func() bool {
		var err error
		st, err = n.Status(context.Background(), campaign, user)
		return err == nil && st.State.Terminal()
	}, 10*time.Second, 2*time.Millisecond, "%s/%s never reached an outcome (last %+v)", campaign, user, st)
	return st
}

// admitAll admits users u0..u(count-1) and waits for every outcome; it
// returns how many were issued.
func admitAll(t *testing.T, api, reader *node.Node, campaign string, count int) int {
	t.Helper()
	for i := range count {
		_, err := api.Admit(t.Context(), couponq.Request{Campaign: campaign, User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
	}
	issued := 0
	for i := range count {
		if waitTerminal(t, reader, campaign, fmt.Sprintf("u%d", i)).State == couponq.StateIssued {
			issued++
		}
	}
	return issued
}

// A node given nothing runs a whole V2 service in this process.
func TestInMemoryDefault(t *testing.T) {
	n := startNode(t, node.Config{})
	created := createCampaign(t, n, couponq.Campaign{ID: "sale", Stock: 3, Interval: 5 * time.Millisecond})
	assert.EqualValues(t, 1, created.Version)
	assert.Equal(t, node.RoleAll, n.Roles())

	for i := range 5 {
		tk, err := n.Admit(t.Context(), couponq.Request{Campaign: "sale", User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
		assert.EqualValues(t, i+1, tk.Entry)
	}
	issued := 0
	for i := range 5 {
		if waitTerminal(t, n, "sale", fmt.Sprintf("u%d", i)).State == couponq.StateIssued {
			issued++
		}
	}
	assert.Equal(t, 3, issued)
	st, err := n.LineStats(t.Context(), "sale")
	require.NoError(t, err)
	assert.EqualValues(t, 5, st.Admitted)
	assert.EqualValues(t, 3, st.Issued)
	assert.True(t, st.SoldOut)

	tk, err := n.Admit(t.Context(), couponq.Request{Campaign: "sale", User: "u0"})
	assert.ErrorIs(t, err, couponq.ErrDuplicate, "a user already issued hears so, with the earlier ticket")
	assert.EqualValues(t, 1, tk.Entry)
}

// A campaign created on a node is served by it at once, even with a
// campaign cache that had just heard it did not exist.
func TestCreatedCampaignServedAtOnce(t *testing.T) {
	n := startNode(t, node.Config{CacheTTL: time.Hour})
	_, err := n.Admit(t.Context(), couponq.Request{Campaign: "later", User: "u"})
	require.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	createCampaign(t, n, couponq.Campaign{ID: "later", Stock: 1, Interval: 5 * time.Millisecond})
	_, err = n.Admit(t.Context(), couponq.Request{Campaign: "later", User: "u"})
	require.NoError(t, err)
	assert.Equal(t, couponq.StateIssued, waitTerminal(t, n, "later", "u").State)
}

// The operators' verbs: create, pause, resume, update, close, retire.
func TestCampaignVerbs(t *testing.T) {
	ctx := t.Context()
	n := startNode(t, node.Config{})
	c := createCampaign(t, n, couponq.Campaign{ID: "drop", Stock: 2, Interval: 5 * time.Millisecond, Paused: true})

	_, err := n.CreateCampaign(ctx, couponq.Campaign{ID: "drop", Stock: 1})
	assert.ErrorIs(t, err, couponq.ErrCampaignExists)
	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: "empty"})
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)

	for _, user := range []string{"ann", "bo"} {
		_, err = n.Admit(ctx, couponq.Request{Campaign: "drop", User: user})
		require.NoError(t, err)
	}
	st, err := n.Status(ctx, "drop", "ann")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateWaiting, st.State, "a paused line admits and holds")

	paused, err := n.PauseCampaign(ctx, "drop")
	require.NoError(t, err)
	assert.Equal(t, c.Version, paused.Version, "pausing a paused campaign writes nothing")
	resumed, err := n.ResumeCampaign(ctx, "drop")
	require.NoError(t, err)
	assert.False(t, resumed.Paused)
	assert.Equal(t, couponq.StateIssued, waitTerminal(t, n, "drop", "ann").State)
	assert.Equal(t, couponq.StateIssued, waitTerminal(t, n, "drop", "bo").State)

	lower := resumed
	lower.Stock = 0
	_, err = n.UpdateCampaign(ctx, lower)
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	stale := c
	stale.Stock = 5
	_, err = n.UpdateCampaign(ctx, stale)
	assert.ErrorIs(t, err, couponq.ErrVersionConflict)
	raised := resumed
	raised.Stock = 5
	updated, err := n.UpdateCampaign(ctx, raised)
	require.NoError(t, err)
	assert.EqualValues(t, 5, updated.Stock)
	below := updated
	below.Stock = 1
	_, err = n.UpdateCampaign(ctx, below)
	assert.ErrorIs(t, err, couponq.ErrStockBelowIssued, "two units are issued already")

	all, err := n.Campaigns(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, updated, all[0])

	err = n.RetireCampaign(ctx, "drop", updated.Version, time.Hour)
	assert.ErrorIs(t, err, couponq.ErrCampaignBusy, "an open campaign cannot be retired")
	closed, err := n.CloseCampaign(ctx, "drop", time.Now())
	require.NoError(t, err)
	_, err = n.Admit(ctx, couponq.Request{Campaign: "drop", User: "cy"})
	assert.ErrorIs(t, err, couponq.ErrClosed)
	require.NoError(t, n.RetireCampaign(ctx, "drop", closed.Version, time.Hour))
	_, err = n.Campaign(ctx, "drop")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	st, err = n.Status(ctx, "drop", "ann")
	require.NoError(t, err, "a retired campaign's outcomes answer for their retention")
	assert.Equal(t, couponq.StateIssued, st.State)
}

// API-only and worker-only nodes over one shared Backend, Transport and
// Store make one service.
func TestRolesSplitAcrossNodes(t *testing.T) {
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	require.NoError(t, err)
	backend, store := memory.New(), memory.NewStore()
	api := startNode(t, node.Config{Roles: node.RoleAPI, Backend: backend, Transport: transport})
	for range 2 {
		w := startNode(t, node.Config{Roles: node.RoleWorker, Backend: backend, Transport: transport, Store: store})
		_, err := w.Admit(t.Context(), couponq.Request{Campaign: "split", User: "x"})
		assert.ErrorIs(t, err, node.ErrNoAPI)
		_, err = w.Status(t.Context(), "split", "x")
		assert.ErrorIs(t, err, node.ErrNoAPI)
		_, err = w.Handler(node.HandlerConfig{User: node.HeaderUser("X-User")})
		assert.ErrorIs(t, err, node.ErrNoAPI)
	}
	createCampaign(t, api, couponq.Campaign{ID: "split", Stock: 10, Interval: 5 * time.Millisecond})
	assert.Equal(t, 10, admitAll(t, api, api, "split", 12))
	n, err := store.IssuedCount(t.Context(), "split")
	require.NoError(t, err)
	assert.EqualValues(t, 10, n)
}

func TestConfigValidation(t *testing.T) {
	_, err := node.New(node.Config{Roles: 1 << 5})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)

	_, err = node.New(node.Config{Backend: memory.New()})
	assert.NoError(t, err, "the in-memory Backend, given explicitly, takes the in-memory Store")
	shared := memory.New()
	shared.Queue = sharedQueue{shared.Queue.(line)} // stands in for a Backend other processes share
	_, err = node.New(node.Config{Backend: shared})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "a worker on a shared Backend needs a shared Store")
	assert.ErrorContains(t, err, "needs a Store")
	_, err = node.New(node.Config{Roles: node.RoleAPI, Backend: shared})
	assert.NoError(t, err, "an API-only node needs no Store")

	b := memory.New()
	b.Locker = nil
	_, err = node.New(node.Config{Backend: b, Store: memory.NewStore()})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	assert.ErrorContains(t, err, `the Backend "memory" lacks Locker`)

	r, err := node.ParseRoles("api, worker")
	require.NoError(t, err)
	assert.Equal(t, node.RoleAll, r)
	r, err = node.ParseRoles("worker")
	require.NoError(t, err)
	assert.Equal(t, node.RoleWorker, r)
	_, err = node.ParseRoles("boss")
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	assert.Equal(t, "api+worker", node.RoleAll.String())
	assert.Equal(t, "api", node.RoleAPI.String())
}

func TestStartTwice(t *testing.T) {
	ctx := t.Context()
	n, err := node.New(node.Config{})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	assert.Error(t, n.Start(ctx))
	require.NoError(t, n.Stop(ctx))
	require.NoError(t, n.Stop(ctx), "Stop twice is safe")

	idle, err := node.New(node.Config{})
	require.NoError(t, err)
	require.NoError(t, idle.Stop(ctx), "Stop without Start is safe")
}

// A sharded campaign works through a node as it is, and its line stats
// count every sub-line.
func TestShardedCampaign(t *testing.T) {
	n := startNode(t, node.Config{})
	createCampaign(t, n, couponq.Campaign{ID: "hot", Stock: 30, Shards: 4, BatchSize: 10, Interval: 5 * time.Millisecond})
	entries := map[int64]bool{}
	for i := range 60 {
		tk, err := n.Admit(t.Context(), couponq.Request{Campaign: "hot", User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
		assert.False(t, entries[tk.Entry], "entry numbers are unique across sub-lines")
		entries[tk.Entry] = true
	}
	issued := 0
	for i := range 60 {
		if waitTerminal(t, n, "hot", fmt.Sprintf("u%d", i)).State == couponq.StateIssued {
			issued++
		}
	}
	assert.Equal(t, 30, issued)
	st, err := n.LineStats(t.Context(), "hot")
	require.NoError(t, err)
	assert.EqualValues(t, 60, st.Admitted)
	assert.EqualValues(t, 30, st.Issued)
}

// A V1 campaign runs on the in-memory Backend, which has a Tally.
func TestValidateFirst(t *testing.T) {
	n := startNode(t, node.Config{})
	createCampaign(t, n, couponq.Campaign{ID: "v1", Stock: 2, Mode: couponq.ValidateFirst, Interval: 5 * time.Millisecond})
	issued := 0
	for i := range 4 {
		_, err := n.Admit(t.Context(), couponq.Request{Campaign: "v1", User: fmt.Sprintf("u%d", i)})
		if err == nil {
			if waitTerminal(t, n, "v1", fmt.Sprintf("u%d", i)).State == couponq.StateIssued {
				issued++
			}
			continue
		}
		assert.ErrorIs(t, err, couponq.ErrSoldOut, "V1 refuses past the stock in the request")
	}
	assert.Equal(t, 2, issued)
}

// recorder is a LineObserver that counts what it is told.
type recorder struct {
	mu     sync.Mutex
	lines  node.Lines
	admits int
	ticks  int
	issues int
	calls  int
	overs  int
	issued int
}

func (r *recorder) OnAdmit(couponq.AdmitEvent)   { r.mu.Lock(); r.admits++; r.mu.Unlock() }
func (r *recorder) OnTick(dispatch.TickEvent)    { r.mu.Lock(); r.ticks++; r.mu.Unlock() }
func (r *recorder) OnStoreCall(issuer.StoreCall) { r.mu.Lock(); r.calls++; r.mu.Unlock() }
func (r *recorder) OnOverIssue(issuer.OverIssue) { r.mu.Lock(); r.overs++; r.mu.Unlock() }
func (r *recorder) ObserveLines(l node.Lines)    { r.mu.Lock(); r.lines = l; r.mu.Unlock() }
func (r *recorder) OnIssue(e issuer.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issues++
	if e.Result.State == couponq.StateIssued {
		r.issued++
	}
}

// One Observer hears admission, the scheduler and the issuer; a
// LineObserver is handed the node, so its line numbers are the node's.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	n := startNode(t, node.Config{Observer: rec})
	rec.mu.Lock()
	assert.Same(t, n, rec.lines, "New hands a LineObserver the node")
	rec.mu.Unlock()
	createCampaign(t, n, couponq.Campaign{ID: "seen", Stock: 2, Shards: 2, Interval: 5 * time.Millisecond})
	assert.Equal(t, 2, admitAll(t, n, n, "seen", 3))

	// The issuer reports a decision right after recording it, so the
	// count may trail Status by a moment. The exact cutoff hands the
	// issuer only the two entries the stock covers; the third is resolved
	// sold out in the line.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		assert.Equal(c, 2, rec.issues)
		assert.Equal(c, 2, rec.issued)
	}, 5*time.Second, 5*time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 3, rec.admits)
	assert.Positive(t, rec.ticks)
	assert.Positive(t, rec.calls)
	assert.Zero(t, rec.overs)
	st, err := rec.lines.LineStats(t.Context(), "seen")
	require.NoError(t, err)
	assert.EqualValues(t, 3, st.Admitted, "the lines a LineObserver reads count every sub-line")
	assert.EqualValues(t, 2, st.Issued)
}

// line is what a node needs of a Backend's Queue.
type line interface {
	couponq.Queue
	couponq.Agenda
	couponq.LineStatser
	couponq.Reopener
	couponq.Archiver
}

// sharedQueue is the in-memory Queue under another type, as a Queue other
// processes share would be.
type sharedQueue struct{ line }
