// Package registrytest is the conformance suite every couponq.Registry must
// pass. The in-memory Campaigns runs it, so does the Redis Registry; a host
// with its own Registry (campaigns in its own database) runs it too:
//
//	func TestMyRegistry(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) couponq.Registry { return newMyRegistry(t) })
//	}
//
// Every test uses fresh campaign IDs (a random run ID and a counter), and
// checks List only for the campaigns it made, so a factory may hand out one
// shared backend.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// Run runs the suite; newRegistry is called once per subtest.
func Run(t *testing.T, newRegistry func(t *testing.T) couponq.Registry) {
	tests := []struct {
		name string
		fn   func(t *testing.T, r couponq.Registry)
	}{
		{"CreateThenGet", testCreateThenGet},
		{"CreateTwiceKeepsTheFirst", testCreateTwice},
		{"CreateInvalidWritesNothing", testCreateInvalid},
		{"UpdateBumpsVersionAndChangesFields", testUpdate},
		{"UpdateStaleVersionConflicts", testUpdateStale},
		{"UpdateUnknown", testUpdateUnknown},
		{"UpdateInvalidWritesNothing", testUpdateInvalid},
		{"ConcurrentUpdatesOneWins", testConcurrentUpdates},
		{"ListOrderedAndComplete", testList},
		{"ReturnedCampaignsAreCopies", testCopies},
		{"ModifyRetriesThroughConflicts", testModifyConcurrent},
		{"ModifyAbortsOnError", testModifyAbort},
		{"PauseResume", testPauseResume},
		{"Close", testClose},
		{"CancelledContext", testCancelled},
		{"DeleteRemovesTheCampaign", testDelete},
		{"IncarnationCountsCreations", testIncarnation},
		{"ShardsAndPreQueueRoundTripShardsFixed", testShardsAndPreQueue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newRegistry(t))
		})
	}
}

var (
	runID = fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	seq   atomic.Int64
)

// newID returns a campaign ID unique to this run of the suite.
func newID() string { return fmt.Sprintf("rt-%s-%d", runID, seq.Add(1)) }

var ctx = context.Background()

// base is a valid campaign with every field set away from its default, and
// times in a zone other than UTC and with nanoseconds, so a lossy encoding
// shows.
func base(id string) couponq.Campaign {
	zone := time.FixedZone("UTC+9", 9*3600)
	opens := time.Date(2031, 3, 1, 9, 0, 0, 123456789, zone)
	return couponq.Campaign{
		ID: id, Stock: 1000, PerUserLimit: 2, OpensAt: opens, ClosesAt: opens.Add(48 * time.Hour),
		BatchSize: 50, Interval: 250 * time.Millisecond, Mode: couponq.QueueFirst, MaxWaiting: 10_000,
	}
}

// same fails unless got is want: times compared as instants, an
// Incarnation of 0 as 1, every other field exactly.
func same(t *testing.T, want, got couponq.Campaign, what string) {
	t.Helper()
	norm := func(c couponq.Campaign) couponq.Campaign {
		c.Incarnation = max(c.Incarnation, 1)
		if c.OpensAt.IsZero() {
			c.OpensAt = time.Time{}
		} else {
			c.OpensAt = c.OpensAt.UTC().Round(0)
		}
		if c.ClosesAt.IsZero() {
			c.ClosesAt = time.Time{}
		} else {
			c.ClosesAt = c.ClosesAt.UTC().Round(0)
		}
		return c
	}
	if norm(want) != norm(got) {
		t.Errorf("%s: the registry answered\n\t%+v\nwant\n\t%+v", what, got, want)
	}
}

func create(t *testing.T, r couponq.Registry, c couponq.Campaign) couponq.Campaign {
	t.Helper()
	got, err := r.Create(ctx, c)
	require.NoError(t, err, "Create(%s)", c.ID)
	return got
}

func get(t *testing.T, r couponq.Registry, id string) couponq.Campaign {
	t.Helper()
	c, err := r.Campaign(ctx, id)
	require.NoError(t, err, "Campaign(%s)", id)
	return c
}

// absent fails unless id is unknown and not listed.
func absent(t *testing.T, r couponq.Registry, id string) {
	t.Helper()
	c, err := r.Campaign(ctx, id)
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "Campaign(%q) after a refused write answered %+v", id, c)
	all, err := r.List(ctx)
	require.NoError(t, err, "List")
	for _, c := range all {
		if c.ID == id {
			t.Errorf("List after a refused write of %q holds it: %+v", id, c)
		}
	}
}

func withVersion(c couponq.Campaign, v int64) couponq.Campaign { c.Version = v; return c }

func testCreateThenGet(t *testing.T, r couponq.Registry) {
	full := base(newID())
	got := create(t, r, full)
	same(t, withVersion(full, 1), got, "Create's answer")
	same(t, withVersion(full, 1), get(t, r, full.ID), "Campaign after Create")

	// Zero fields come back with their defaults; no window, V1 mode.
	bare := couponq.Campaign{ID: newID(), Stock: 3, Mode: couponq.ValidateFirst}
	want := bare.WithDefaults()
	want.Version = 1
	same(t, want, create(t, r, bare), "Create's answer for a campaign with defaults")
	same(t, want, get(t, r, bare.ID), "Campaign with defaults")
}

func testCreateTwice(t *testing.T, r couponq.Registry) {
	first := base(newID())
	create(t, r, first)
	second := first
	second.Stock = 7
	got, err := r.Create(ctx, second)
	assert.ErrorIs(t, err, couponq.ErrCampaignExists, "second Create answered %+v", got)
	same(t, withVersion(first, 1), get(t, r, first.ID), "campaign after a second Create")
}

func testCreateInvalid(t *testing.T, r couponq.Registry) {
	bad := map[string]func(c *couponq.Campaign){
		"version 1":         func(c *couponq.Campaign) { c.Version = 1 },
		"version -1":        func(c *couponq.Campaign) { c.Version = -1 },
		"stock 0":           func(c *couponq.Campaign) { c.Stock = 0 },
		"negative batch":    func(c *couponq.Campaign) { c.BatchSize = -1 },
		"negative interval": func(c *couponq.Campaign) { c.Interval = -time.Second },
		"closes before it opens": func(c *couponq.Campaign) {
			c.ClosesAt = c.OpensAt.Add(-time.Second)
		},
		"unknown mode":         func(c *couponq.Campaign) { c.Mode = 9 },
		"negative max waiting": func(c *couponq.Campaign) { c.MaxWaiting = -1 },
		// Beyond the bounds (issue 20's values among them): arithmetic on
		// them would overflow, and admitted users would never be served.
		"batch size 2^61":          func(c *couponq.Campaign) { c.BatchSize = 1 << 61 },
		"interval 9223372036854ms": func(c *couponq.Campaign) { c.Interval = 9223372036854 * time.Millisecond },
		"stock beyond 10^15":       func(c *couponq.Campaign) { c.Stock = 1e15 + 1 },
		"max waiting beyond 10^15": func(c *couponq.Campaign) { c.MaxWaiting = 1e15 + 1 },
	}
	for name, spoil := range bad {
		c := base(newID())
		spoil(&c)
		got, err := r.Create(ctx, c)
		assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Create with %s answered %+v", name, got)
		absent(t, r, c.ID)
	}
	for _, id := range []string{"", "has space", "brace{" + newID() + "}", strings.Repeat("x", couponq.MaxIDLen+1)} {
		c := base(id)
		got, err := r.Create(ctx, c)
		assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Create with ID %q answered %+v", id, got)
		absent(t, r, id)
	}
}

func testUpdate(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	steps := []struct {
		name   string
		change func(c *couponq.Campaign)
	}{
		{"raise stock", func(c *couponq.Campaign) { c.Stock = 5000 }},
		{"lower stock", func(c *couponq.Campaign) { c.Stock = 10 }},
		{"batch size", func(c *couponq.Campaign) { c.BatchSize = 7 }},
		{"interval", func(c *couponq.Campaign) { c.Interval = 3 * time.Second }},
		{"window", func(c *couponq.Campaign) {
			c.OpensAt = c.OpensAt.Add(-time.Hour)
			c.ClosesAt = c.OpensAt.Add(90 * time.Minute)
		}},
		{"no window", func(c *couponq.Campaign) { c.OpensAt, c.ClosesAt = time.Time{}, time.Time{} }},
		{"pause", func(c *couponq.Campaign) { c.Paused = true }},
		{"resume", func(c *couponq.Campaign) { c.Paused = false }},
		{"per-user limit and mode", func(c *couponq.Campaign) { c.PerUserLimit, c.Mode = 4, couponq.ValidateFirst }},
		{"line cap", func(c *couponq.Campaign) { c.MaxWaiting = 3 }},
		{"no line cap", func(c *couponq.Campaign) { c.MaxWaiting = 0 }},
		{"defaults", func(c *couponq.Campaign) { c.PerUserLimit, c.BatchSize, c.Interval = 0, 0, 0 }},
	}
	for _, s := range steps {
		next := c
		s.change(&next)
		got, err := r.Update(ctx, next)
		require.NoError(t, err, "Update to %s at version %d", s.name, c.Version)
		want := next.WithDefaults()
		want.Version = c.Version + 1
		same(t, want, got, "Update's answer to "+s.name)
		same(t, want, get(t, r, c.ID), "Campaign after update to "+s.name)
		c = got
	}
}

func testUpdateStale(t *testing.T, r couponq.Registry) {
	v1 := create(t, r, base(newID()))
	v2 := v1
	v2.Stock = 2000
	v2, err := r.Update(ctx, v2)
	require.NoError(t, err)
	for _, version := range []int64{1, 3, 99} {
		stale := withVersion(v1, version)
		stale.Stock = 1
		got, err := r.Update(ctx, stale)
		assert.ErrorIs(t, err, couponq.ErrVersionConflict, "Update from version %d of a campaign at version 2 answered %+v", version, got)
	}
	same(t, v2, get(t, r, v1.ID), "campaign after stale updates")
}

func testUpdateUnknown(t *testing.T, r couponq.Registry) {
	c := withVersion(base(newID()), 1)
	got, err := r.Update(ctx, c)
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "Update of a campaign never created answered %+v", got)
	absent(t, r, c.ID)
}

func testUpdateInvalid(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	bad := map[string]func(c *couponq.Campaign){
		"version 0":               func(c *couponq.Campaign) { c.Version = 0 },
		"version -1":              func(c *couponq.Campaign) { c.Version = -1 },
		"stock 0":                 func(c *couponq.Campaign) { c.Stock = 0 },
		"negative stock":          func(c *couponq.Campaign) { c.Stock = -5 },
		"negative per-user":       func(c *couponq.Campaign) { c.PerUserLimit = -1 },
		"negative batch":          func(c *couponq.Campaign) { c.BatchSize = -1 },
		"negative interval":       func(c *couponq.Campaign) { c.Interval = -time.Second },
		"closes when it opens":    func(c *couponq.Campaign) { c.ClosesAt = c.OpensAt },
		"unknown mode":            func(c *couponq.Campaign) { c.Mode = 9 },
		"closes before it opens":  func(c *couponq.Campaign) { c.ClosesAt = c.OpensAt.Add(-time.Hour) },
		"batch size beyond":       func(c *couponq.Campaign) { c.BatchSize = 100_001 },
		"interval beyond an hour": func(c *couponq.Campaign) { c.Interval = time.Hour + time.Millisecond },
		"per-user beyond":         func(c *couponq.Campaign) { c.PerUserLimit = 1_000_001 },
	}
	for name, spoil := range bad {
		next := c
		spoil(&next)
		got, err := r.Update(ctx, next)
		assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Update with %s answered %+v", name, got)
	}
	same(t, c, get(t, r, c.ID), "campaign after refused updates")
}

func testConcurrentUpdates(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	const n = 16
	var (
		wg        sync.WaitGroup
		wins      atomic.Int64
		winner    atomic.Int64
		conflicts atomic.Int64
		others    = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			next := c
			next.Stock = int64(100 + i)
			_, err := r.Update(ctx, next)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(next.Stock)
			case errors.Is(err, couponq.ErrVersionConflict):
				conflicts.Add(1)
			default:
				others <- err
			}
		})
	}
	wg.Wait()
	close(others)
	for err := range others {
		t.Errorf("concurrent Update failed with neither success nor a conflict: %v", err)
	}
	require.Equal(t, int64(1), wins.Load(), "%d concurrent updates from version 1: %d won, %d conflicted", n, wins.Load(), conflicts.Load())
	got := get(t, r, c.ID)
	assert.Equal(t, int64(2), got.Version, "version after one winning update")
	assert.Equal(t, winner.Load(), got.Stock, "stock after concurrent updates must be the winner's")
}

func testList(t *testing.T, r couponq.Registry) {
	const n = 300
	prefix := newID() + "-"
	want := make([]couponq.Campaign, n)
	for i := range want {
		c := base(fmt.Sprintf("%s%03d", prefix, i))
		c.Stock = int64(i + 1)
		want[i] = withVersion(c, 1)
	}
	// Created out of order, concurrently: List sorts, whatever the order
	// of writes.
	order := rand.Perm(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for j := w; j < n; j += 8 {
				if _, err := r.Create(ctx, withVersion(want[order[j]], 0)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Create: %v", err)
	}
	all, err := r.List(ctx)
	require.NoError(t, err, "List")
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("List is not ordered by ID: %q at %d, then %q", all[i-1].ID, i-1, all[i].ID)
		}
	}
	var ours []couponq.Campaign
	for _, c := range all {
		if strings.HasPrefix(c.ID, prefix) {
			ours = append(ours, c)
		}
	}
	require.Len(t, ours, n, "List returned %d of the %d campaigns created", len(ours), n)
	for i := range want {
		same(t, want[i], ours[i], "List["+want[i].ID+"]")
	}
}

func testCopies(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	c.Stock = 1
	c.Paused = true
	got := get(t, r, c.ID)
	assert.Equal(t, int64(1000), got.Stock, "changing a returned campaign changed the stored one")
	all, err := r.List(ctx)
	require.NoError(t, err)
	for i := range all {
		all[i].Stock = 2
	}
	assert.Equal(t, int64(1000), get(t, r, c.ID).Stock, "changing a listed campaign changed the stored one")
}

func testModifyConcurrent(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := (&catalog.Ops{Registry: r}).Modify(ctx, c.ID, func(c *couponq.Campaign) error {
				c.Stock++
				return nil
			}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Modify: %v", err)
	}
	got := get(t, r, c.ID)
	assert.Equal(t, c.Stock+n, got.Stock, "stock after %d concurrent Modify increments", n)
	assert.Equal(t, c.Version+n, got.Version, "version after %d concurrent Modify increments", n)

	_, err := (&catalog.Ops{Registry: r}).Modify(ctx, newID(), func(*couponq.Campaign) error { return nil })
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "Modify of an unknown campaign")
}

func testModifyAbort(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	boom := errors.New("operator changed their mind")
	_, err := (&catalog.Ops{Registry: r}).Modify(ctx, c.ID, func(c *couponq.Campaign) error {
		c.Stock = 1
		return boom
	})
	assert.ErrorIs(t, err, boom, "Modify must return fn's error")
	_, err = (&catalog.Ops{Registry: r}).Modify(ctx, c.ID, func(c *couponq.Campaign) error { c.Stock = 0; return nil })
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Modify to stock 0")
	_, err = (&catalog.Ops{Registry: r}).Modify(ctx, c.ID, func(c *couponq.Campaign) error { c.ID = newID(); return nil })
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Modify changing the ID")
	same(t, c, get(t, r, c.ID), "campaign after aborted Modify calls")

	// A change to nothing writes nothing.
	got, err := (&catalog.Ops{Registry: r}).Modify(ctx, c.ID, func(*couponq.Campaign) error { return nil })
	require.NoError(t, err)
	same(t, c, got, "Modify that changes nothing")
}

func testPauseResume(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	now := c.OpensAt.Add(time.Minute)
	require.Equal(t, couponq.CampaignOpen, c.State(now, false))

	p, err := (&catalog.Ops{Registry: r}).Pause(ctx, c.ID)
	require.NoError(t, err, "Pause")
	assert.True(t, p.Paused, "Pause answered %+v", p)
	assert.Equal(t, c.Version+1, p.Version, "version after Pause")
	got := get(t, r, c.ID)
	assert.True(t, got.Paused, "campaign after Pause: %+v", got)
	assert.Equal(t, couponq.CampaignPaused, got.State(now, false))

	again, err := (&catalog.Ops{Registry: r}).Pause(ctx, c.ID)
	require.NoError(t, err, "second Pause")
	assert.Equal(t, p.Version, again.Version, "pausing a paused campaign must write nothing")

	res, err := (&catalog.Ops{Registry: r}).Resume(ctx, c.ID)
	require.NoError(t, err, "Resume")
	assert.False(t, res.Paused, "Resume answered %+v", res)
	got = get(t, r, c.ID)
	assert.False(t, got.Paused, "campaign after Resume: %+v", got)
	assert.Equal(t, p.Version+1, got.Version, "version after Resume")
	assert.Equal(t, couponq.CampaignOpen, got.State(now, false))

	_, err = (&catalog.Ops{Registry: r}).Pause(ctx, newID())
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "Pause of an unknown campaign")
}

func testClose(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	at := c.OpensAt.Add(time.Hour)
	closed, err := (&catalog.Ops{Registry: r}).Close(ctx, c.ID, at)
	require.NoError(t, err, "Close")
	assert.True(t, closed.ClosesAt.Equal(at), "Close set ClosesAt to %s, want %s", closed.ClosesAt, at)
	got := get(t, r, c.ID)
	assert.True(t, got.ClosesAt.Equal(at), "ClosesAt after Close is %s, want %s", got.ClosesAt, at)
	assert.Equal(t, couponq.CampaignClosed, got.State(at, false))
	assert.Equal(t, couponq.CampaignOpen, got.State(at.Add(-time.Nanosecond), false))
	assert.ErrorIs(t, got.CheckWindow(at), couponq.ErrClosed)

	// A later close keeps the earlier ClosesAt, and writes nothing.
	later, err := (&catalog.Ops{Registry: r}).Close(ctx, c.ID, at.Add(time.Hour))
	require.NoError(t, err, "later Close")
	assert.True(t, later.ClosesAt.Equal(at), "a later Close moved ClosesAt to %s", later.ClosesAt)
	assert.Equal(t, got.Version, later.Version, "a later Close must write nothing")

	// An earlier one moves it.
	earlier, err := (&catalog.Ops{Registry: r}).Close(ctx, c.ID, at.Add(-time.Minute))
	require.NoError(t, err, "earlier Close")
	assert.True(t, earlier.ClosesAt.Equal(at.Add(-time.Minute)), "an earlier Close left ClosesAt at %s", earlier.ClosesAt)

	// Not after OpensAt: refused, nothing written.
	for _, bad := range []time.Time{c.OpensAt, c.OpensAt.Add(-time.Hour)} {
		_, err := (&catalog.Ops{Registry: r}).Close(ctx, c.ID, bad)
		assert.ErrorIs(t, err, couponq.ErrNotOpen, "Close at %s, when the campaign opens at %s", bad, c.OpensAt)
	}
	_, err = (&catalog.Ops{Registry: r}).Close(ctx, c.ID, time.Time{})
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Close at the zero time")
	same(t, earlier, get(t, r, c.ID), "campaign after refused Close calls")

	// A campaign without a window closes too.
	open := create(t, r, couponq.Campaign{ID: newID(), Stock: 1})
	now := time.Now()
	got, err = (&catalog.Ops{Registry: r}).Close(ctx, open.ID, now)
	require.NoError(t, err, "Close of a campaign without a window")
	assert.True(t, got.ClosesAt.Equal(now), "ClosesAt is %s, want %s", got.ClosesAt, now)
}

func testCancelled(t *testing.T, r couponq.Registry) {
	c := create(t, r, base(newID()))
	cctx, cancel := context.WithCancel(ctx)
	cancel()

	_, err := r.Campaign(cctx, c.ID)
	assert.ErrorIs(t, err, context.Canceled, "Campaign with a cancelled context")
	_, err = r.List(cctx)
	assert.ErrorIs(t, err, context.Canceled, "List with a cancelled context")

	fresh := base(newID())
	_, err = r.Create(cctx, fresh)
	assert.ErrorIs(t, err, context.Canceled, "Create with a cancelled context")
	absent(t, r, fresh.ID)

	next := c
	next.Stock = 1
	_, err = r.Update(cctx, next)
	assert.ErrorIs(t, err, context.Canceled, "Update with a cancelled context")
	_, err = (&catalog.Ops{Registry: r}).Modify(cctx, c.ID, func(c *couponq.Campaign) error { c.Stock = 1; return nil })
	assert.ErrorIs(t, err, context.Canceled, "Modify with a cancelled context")
	same(t, c, get(t, r, c.ID), "campaign after cancelled writes")
}

// testDelete checks Delete: it is version-checked like Update, and removes the campaign from
// Campaign and List, after which its ID is free for Create again.
func testDelete(t *testing.T, r couponq.Registry) {
	deleter := r
	keep := create(t, r, base(newID()))
	c := create(t, r, base(newID()))
	c.Stock = 2000
	c, err := r.Update(ctx, c)
	require.NoError(t, err)

	for _, version := range []int64{1, 3} {
		err := deleter.Delete(ctx, c.ID, version)
		assert.ErrorIs(t, err, couponq.ErrVersionConflict, "Delete from version %d of a campaign at version 2", version)
	}
	for _, version := range []int64{0, -1} {
		err := deleter.Delete(ctx, c.ID, version)
		assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Delete with version %d", version)
	}
	same(t, c, get(t, r, c.ID), "campaign after refused deletes")
	assert.ErrorIs(t, deleter.Delete(ctx, newID(), 1), couponq.ErrUnknownCampaign, "Delete of a campaign never created")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, deleter.Delete(cctx, c.ID, c.Version), context.Canceled, "Delete with a cancelled context")
	same(t, c, get(t, r, c.ID), "campaign after a cancelled delete")

	require.NoError(t, deleter.Delete(ctx, c.ID, c.Version), "Delete at the stored version")
	absent(t, r, c.ID)
	assert.ErrorIs(t, deleter.Delete(ctx, c.ID, c.Version), couponq.ErrUnknownCampaign, "a second Delete")
	_, err = r.Update(ctx, c)
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "Update of a deleted campaign")
	same(t, keep, get(t, r, keep.ID), "another campaign after a Delete")

	fresh := base(c.ID)
	fresh.Stock = 7
	want := withVersion(fresh, 1)
	want.Incarnation = 2
	same(t, want, create(t, r, fresh), "Create of a deleted campaign's ID starts at version 1, incarnation 2")
	same(t, want, get(t, r, c.ID), "Campaign after re-creating a deleted ID")
	all, err := r.List(ctx)
	require.NoError(t, err)
	n := 0
	for _, l := range all {
		if l.ID == c.ID {
			n++
			same(t, want, l, "List after re-creating a deleted ID")
		}
	}
	assert.Equal(t, 1, n, "List holds a re-created ID once")
}

// testIncarnation: Create gives a fresh ID Incarnation 1 and a deleted
// one the incarnation after its last; Update keeps it; the Incarnation a
// caller passes to Create or Update is ignored. Campaign and List read it.
func testIncarnation(t *testing.T, r couponq.Registry) {
	c := base(newID())
	c.Incarnation = 5 // ignored
	got := create(t, r, c)
	assert.Equal(t, int64(1), got.Incarnation, "Create of a fresh ID")
	assert.Equal(t, int64(1), get(t, r, c.ID).Incarnation, "Campaign after Create of a fresh ID")
	assert.Equal(t, c.ID, got.StoreCampaign(), "the first incarnation's store name is the ID")

	other := create(t, r, base(newID()))
	for want := int64(2); want <= 3; want++ {
		got.Stock++
		got.Incarnation = 9 // ignored
		updated, err := r.Update(ctx, got)
		require.NoError(t, err, "Update")
		assert.Equal(t, want-1, updated.Incarnation, "Update keeps the incarnation")
		assert.Equal(t, want-1, get(t, r, c.ID).Incarnation, "Campaign after Update")

		require.NoError(t, r.Delete(ctx, c.ID, updated.Version), "Delete")
		absent(t, r, c.ID)
		fresh := base(c.ID)
		fresh.Stock = want
		got = create(t, r, fresh)
		assert.Equal(t, want, got.Incarnation, "Create after Delete (creation %d)", want)
		assert.Equal(t, int64(1), got.Version, "Create after Delete starts at version 1")
		assert.Equal(t, want, get(t, r, c.ID).Incarnation, "Campaign after re-creation %d", want)
		assert.Equal(t, fmt.Sprintf("%s~%d", c.ID, want), got.StoreCampaign(), "store name of incarnation %d", want)
		all, err := r.List(ctx)
		require.NoError(t, err)
		for _, l := range all {
			if l.ID == c.ID {
				assert.Equal(t, want, l.Incarnation, "List after re-creation %d", want)
			}
		}
	}
	_, err := r.Create(ctx, base(c.ID))
	assert.ErrorIs(t, err, couponq.ErrCampaignExists, "Create of a live ID")
	assert.Equal(t, int64(3), get(t, r, c.ID).Incarnation, "a refused Create counts no creation")
	assert.Equal(t, int64(1), get(t, r, other.ID).Incarnation, "another ID's incarnation")
}

// testShardsAndPreQueue: Shards and PreQueue come back as written, by
// Create, Update and List; PreQueue may change, but Shards are fixed once
// created (couponq.CheckChange): an Update changing them is refused with
// ErrInvalidCampaign and the stored campaign, version included, stays.
// 0 and 1 are the same count (one line), so a change between them is
// allowed.
func testShardsAndPreQueue(t *testing.T, r couponq.Registry) {
	sharded := base(newID())
	sharded.Shards = 4
	stored := create(t, r, sharded)
	same(t, withVersion(sharded, 1), stored, "Create's answer for a sharded campaign")
	same(t, withVersion(sharded, 1), get(t, r, sharded.ID), "Campaign of a sharded campaign")

	pre := base(newID())
	pre.PreQueue = 10 * time.Minute
	same(t, withVersion(pre, 1), create(t, r, pre), "Create's answer for a campaign with a pre-queue")
	same(t, withVersion(pre, 1), get(t, r, pre.ID), "Campaign with a pre-queue")
	all, err := r.List(ctx)
	require.NoError(t, err)
	for _, c := range all {
		switch c.ID {
		case sharded.ID:
			same(t, withVersion(sharded, 1), c, "List's sharded campaign")
		case pre.ID:
			same(t, withVersion(pre, 1), c, "List's campaign with a pre-queue")
		}
	}
	next := withVersion(pre, 1)
	next.PreQueue = 90 * time.Second
	got, err := r.Update(ctx, next)
	require.NoError(t, err, "Update of the pre-queue")
	same(t, withVersion(next, 2), got, "Update's answer to a new pre-queue")
	next = got
	next.PreQueue = 0
	got, err = r.Update(ctx, next)
	require.NoError(t, err, "Update to no pre-queue")
	same(t, withVersion(next, 3), get(t, r, pre.ID), "Campaign after the pre-queue was taken away")

	for _, n := range []int{0, 1, 2, 8} {
		change := stored
		change.Shards = n
		change.Stock++ // a change that would otherwise pass
		got, err := r.Update(ctx, change)
		assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Update of Shards from 4 to %d answered %+v", n, got)
	}
	same(t, stored, get(t, r, sharded.ID), "a sharded campaign after refused changes of Shards")

	one := create(t, r, base(newID()))
	for _, n := range []int{1, 0} {
		change := one
		change.Shards = n
		got, err := r.Update(ctx, change)
		require.NoError(t, err, "Update of Shards from %d to %d: both one line", one.Shards, n)
		same(t, withVersion(change, one.Version+1), got, "Update's answer to Shards "+fmt.Sprint(n))
		one = got
	}
	change := one
	change.Shards = 2
	_, err = r.Update(ctx, change)
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "Update of Shards from one line to 2")
	same(t, one, get(t, r, one.ID), "a campaign of one line after a refused change to 2")
}
