package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// The README's promise: a full V2 service on the in-memory backends.
func TestInMemoryDefault(t *testing.T) {
	ctx := context.Background()
	campaigns, err := memline.NewRegistry(couponq.Campaign{ID: "sale", Stock: 3, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	n, err := node.New(node.Config{Catalog: campaigns})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()
	for i := range 5 {
		tk, err := n.Admit(ctx, couponq.Request{Campaign: "sale", User: fmt.Sprintf("u%d", i)})
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
	assert.EqualValues(t, 3, n.Store().(*memory.Store).Issued("sale"))
}

// A campaign created at runtime in the registry is served without anything
// else being started.
func TestCampaignCreatedAtRuntime(t *testing.T) {
	ctx := context.Background()
	campaigns, err := memline.NewRegistry()
	require.NoError(t, err)
	n, err := node.New(node.Config{Catalog: campaigns, CatalogTTL: -1})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()
	_, err = n.Admit(ctx, couponq.Request{Campaign: "later", User: "u"})
	require.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	_, err = campaigns.Create(ctx, couponq.Campaign{ID: "later", Stock: 1, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	_, err = n.Admit(ctx, couponq.Request{Campaign: "later", User: "u"})
	require.NoError(t, err)
	assert.Equal(t, couponq.StateIssued, waitTerminal(t, n, "later", "u").State)
}

// API-only and worker-only nodes over shared backends make one service.
func TestRolesSplitAcrossNodes(t *testing.T) {
	ctx := context.Background()
	campaigns, err := memline.NewRegistry(couponq.Campaign{ID: "split", Stock: 10, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	require.NoError(t, err)
	queue, store, locker := memline.NewQueue(nil), memory.NewStore(), lock.NewMemory()
	api, err := node.New(node.Config{Roles: node.RoleAPI, Catalog: campaigns, Queue: queue})
	require.NoError(t, err)
	assert.Nil(t, api.Store())
	workers := make([]*node.Node, 2)
	for i := range workers {
		workers[i], err = node.New(node.Config{Roles: node.RoleWorker, Catalog: campaigns, Queue: queue,
			Locker: locker, Dispatcher: transport, Consumer: transport, Store: store})
		require.NoError(t, err)
		require.NoError(t, workers[i].Start(ctx))
	}
	require.NoError(t, api.Start(ctx))
	_, err = workers[0].Admit(ctx, couponq.Request{Campaign: "split", User: "x"})
	assert.ErrorIs(t, err, node.ErrNoAPI)
	for i := range 12 {
		_, err := api.Admit(ctx, couponq.Request{Campaign: "split", User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
	}
	for i := range 12 {
		waitTerminal(t, api, "split", fmt.Sprintf("u%d", i))
	}
	assert.EqualValues(t, 10, store.Issued("split"))
	for _, w := range append(workers, api) {
		require.NoError(t, w.Stop(ctx))
		require.NoError(t, w.Stop(ctx), "Stop twice is safe")
	}
}

func TestConfigValidation(t *testing.T) {
	campaigns, err := memline.NewRegistry()
	require.NoError(t, err)
	_, err = node.New(node.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = node.New(node.Config{Catalog: campaigns, Queue: memline.NewQueue(nil)})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "a worker needs its backends once any is given")
	assert.ErrorContains(t, err, "Locker, Dispatcher, Consumer, Store")
	_, err = node.New(node.Config{Roles: node.RoleAPI, Catalog: campaigns, Queue: memline.NewQueue(nil)})
	assert.NoError(t, err, "an API node needs only the Queue")
	_, err = node.New(node.Config{Roles: 1 << 5, Catalog: campaigns})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)

	r, err := node.ParseRoles("api, worker")
	require.NoError(t, err)
	assert.Equal(t, node.RoleAll, r)
	_, err = node.ParseRoles("boss")
	assert.True(t, errors.Is(err, couponq.ErrInvalidConfig))
	assert.Equal(t, "api+worker", node.RoleAll.String())
}

func TestStartTwice(t *testing.T) {
	ctx := context.Background()
	campaigns, err := memline.NewRegistry()
	require.NoError(t, err)
	n, err := node.New(node.Config{Catalog: campaigns})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	assert.Error(t, n.Start(ctx))
	require.NoError(t, n.Stop(ctx))
}

// A sharded campaign works through a node as it is: the node puts the
// shard wrapper in front of its Queue.
func TestShardedCampaign(t *testing.T) {
	ctx := context.Background()
	campaigns, err := memline.NewRegistry(couponq.Campaign{ID: "hot", Stock: 30, Shards: 4, BatchSize: 10, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	n, err := node.New(node.Config{Catalog: campaigns})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()
	entries := map[int64]bool{}
	for i := range 60 {
		tk, err := n.Admit(ctx, couponq.Request{Campaign: "hot", User: fmt.Sprintf("u%d", i)})
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
	assert.EqualValues(t, 30, n.Store().(*memory.Store).Issued("hot"))
	st, err := n.Queue().(couponq.LineStatser).LineStats(ctx, "hot")
	require.NoError(t, err)
	assert.Equal(t, int64(60), st.Admitted)
	assert.Equal(t, int64(30), st.Issued)
}
