// Package dispatchtest is the conformance suite every transport (a
// couponq.Dispatcher and its couponq.Consumer) must pass:
//
//	func TestMyTransport(t *testing.T) {
//		dispatchtest.Run(t, func(t *testing.T) (couponq.Dispatcher, couponq.Consumer) {
//			return newMyTransport(t)
//		})
//	}
//
// The factory must return a transport no other subtest shares (a fresh topic,
// say): the suite checks exactly what arrives. When the Consumer is also a
// couponq.BatchConsumer, the Batch subtests check ConsumeBatches too.
package dispatchtest

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

// Options tune the suite to a slow transport.
type Options struct {
	// Wait bounds how long the suite waits for deliveries. Zero means 20s.
	Wait time.Duration
}

// Run runs the suite with default options.
func Run(t *testing.T, newTransport func(t *testing.T) (couponq.Dispatcher, couponq.Consumer)) {
	RunWith(t, Options{}, newTransport)
}

// RunWith runs the suite; newTransport is called once per subtest.
func RunWith(t *testing.T, o Options, newTransport func(t *testing.T) (couponq.Dispatcher, couponq.Consumer)) {
	if o.Wait == 0 {
		o.Wait = 20 * time.Second
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer)
	}{
		{"DeliversEveryEntryIntact", testDelivers},
		{"FailedHandlerIsRedelivered", testRedeliver},
		{"StopAndRestartLosesNothing", testRestart},
		{"ConsumeReturnsOnCancel", testConsumeCancel},
		{"DispatchCancelled", testDispatchCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, c := newTransport(t)
			tc.fn(t, o, d, c)
		})
	}
	batchTests := []struct {
		name string
		fn   func(t *testing.T, o Options, d couponq.Dispatcher, c couponq.BatchConsumer)
	}{
		{"DeliversEveryEntryInOrderedBatches", testBatchDelivers},
		{"FailedBatchIsRedelivered", testBatchRedeliver},
		{"RejectsBadArguments", testBatchArgs},
	}
	for _, tc := range batchTests {
		t.Run("Batch/"+tc.name, func(t *testing.T) {
			d, c := newTransport(t)
			bc, ok := c.(couponq.BatchConsumer)
			if !ok {
				t.Skipf("%T is not a couponq.BatchConsumer", c)
			}
			tc.fn(t, o, d, bc)
		})
	}
}

// consumeBatches is consume for ConsumeBatches.
func consumeBatches(t *testing.T, c couponq.BatchConsumer, max int, h couponq.BatchHandler) (stop func()) {
	return consume(t, couponq.ConsumerFunc(func(ctx context.Context, _ couponq.Handler) error {
		return c.ConsumeBatches(ctx, max, h)
	}), nil)
}

func testBatchDelivers(t *testing.T, o Options, d couponq.Dispatcher, c couponq.BatchConsumer) {
	const most = 32
	es := batch(150)
	dispatch(t, d, es)
	col := newCollector()
	var mu sync.Mutex
	var sizes []int
	consumeBatches(t, c, most, func(ctx context.Context, b []couponq.Entry) error {
		mu.Lock()
		sizes = append(sizes, len(b))
		mu.Unlock()
		for k, e := range b {
			col.add(e)
			if k > 0 && b[k-1].Campaign == e.Campaign {
				assert.Less(t, b[k-1].Number, e.Number, "a batch keeps delivery order")
			}
		}
		return nil
	})
	require.Eventually(t, func() bool { return col.distinct() == len(es) }, o.Wait, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	biggest := 0
	for _, n := range sizes {
		assert.True(t, n >= 1 && n <= most, "batch of %d entries, want 1..%d", n, most)
		biggest = max(biggest, n)
	}
	assert.Greater(t, biggest, 1, "150 entries ready before consuming, yet every batch held one (sizes %v)", sizes)
}

func testBatchRedeliver(t *testing.T, o Options, d couponq.Dispatcher, c couponq.BatchConsumer) {
	es := batch(40)
	dispatch(t, d, es)
	col := newCollector()
	var failedOnce sync.Map // key -> true once a batch holding it failed
	var committed atomic.Int64
	consumeBatches(t, c, 8, func(ctx context.Context, b []couponq.Entry) error {
		fail := false
		for _, e := range b {
			if col.add(e) == 1 && e.Number%5 == 0 {
				fail = true
			}
		}
		if fail {
			for _, e := range b {
				failedOnce.Store(e.Key(), true)
			}
			return fmt.Errorf("transient failure of a batch of %d", len(b))
		}
		committed.Add(int64(len(b)))
		return nil
	})
	require.Eventually(t, func() bool { return col.distinct() == len(es) && committed.Load() >= int64(len(es)) },
		o.Wait, 10*time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	failedOnce.Range(func(k, _ any) bool {
		assert.GreaterOrEqual(t, col.count[k.(string)], 2, "%s was in a failed batch and must come again", k)
		return true
	})
}

func testBatchArgs(t *testing.T, o Options, d couponq.Dispatcher, c couponq.BatchConsumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.ErrorIs(t, c.ConsumeBatches(ctx, 0, func(context.Context, []couponq.Entry) error { return nil }), couponq.ErrInvalidConfig)
	assert.ErrorIs(t, c.ConsumeBatches(ctx, 10, nil), couponq.ErrInvalidConfig)
}

var seq atomic.Int64

func batch(n int) []couponq.Entry {
	campaign := fmt.Sprintf("dt-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
	at := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]couponq.Entry, n)
	for i := range out {
		out[i] = couponq.Entry{
			Campaign: campaign, User: fmt.Sprintf("user-%d", i), Number: int64(i + 1),
			AdmittedAt: at.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("req-%d", i),
		}
	}
	return out
}

// collector records deliveries by entry key.
type collector struct {
	mu    sync.Mutex
	count map[string]int
	got   map[string]couponq.Entry
}

func newCollector() *collector {
	return &collector{count: map[string]int{}, got: map[string]couponq.Entry{}}
}

func (c *collector) add(e couponq.Entry) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[e.Key()]++
	c.got[e.Key()] = e
	return c.count[e.Key()]
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// consume runs c.Consume in a goroutine and returns a stop function that
// cancels it and waits for it to return.
func consume(t *testing.T, c couponq.Consumer, h couponq.Handler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err, "Consume after cancel")
			case <-time.After(30 * time.Second):
				t.Error("Consume did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func dispatch(t *testing.T, d couponq.Dispatcher, es []couponq.Entry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Dispatch(ctx, es))
}

func testDelivers(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer) {
	require.NoError(t, d.Dispatch(context.Background(), nil), "an empty batch is fine")
	es := batch(150)
	for i := 0; i < len(es); i += 50 {
		dispatch(t, d, es[i:i+50])
	}
	col := newCollector()
	consume(t, c, func(ctx context.Context, e couponq.Entry) error { col.add(e); return nil })
	require.Eventually(t, func() bool { return col.distinct() == len(es) }, o.Wait, 10*time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, want := range es {
		got, ok := col.got[want.Key()]
		if assert.True(t, ok, "missing %s", want.Key()) {
			assert.Equal(t, want.Campaign, got.Campaign)
			assert.Equal(t, want.User, got.User)
			assert.Equal(t, want.Number, got.Number)
			assert.Equal(t, want.RequestID, got.RequestID)
			assert.True(t, want.AdmittedAt.Equal(got.AdmittedAt), "admitted at %s, got %s", want.AdmittedAt, got.AdmittedAt)
		}
	}
}

func testRedeliver(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer) {
	es := batch(20)
	dispatch(t, d, es)
	col := newCollector()
	var done atomic.Int64
	consume(t, c, func(ctx context.Context, e couponq.Entry) error {
		if n := col.add(e); e.Number%4 == 0 && n == 1 {
			return fmt.Errorf("transient failure of %d", e.Number)
		}
		done.Add(1)
		return nil
	})
	require.Eventually(t, func() bool { return col.distinct() == len(es) && done.Load() >= int64(len(es)) },
		o.Wait, 10*time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, e := range es {
		if e.Number%4 == 0 {
			assert.GreaterOrEqual(t, col.count[e.Key()], 2, "failed entry %d must come again", e.Number)
		}
	}
}

func testRestart(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer) {
	es := batch(60)
	dispatch(t, d, es)
	committed := newCollector()
	var seen atomic.Int64
	stop := consume(t, c, func(ctx context.Context, e couponq.Entry) error {
		if seen.Add(1) > 10 {
			// Past ten entries the consumer is "killed": the handler never finishes.
			<-ctx.Done()
			return ctx.Err()
		}
		committed.add(e)
		return nil
	})
	require.Eventually(t, func() bool { return seen.Load() > 10 }, o.Wait, 10*time.Millisecond)
	stop()

	second := newCollector()
	consume(t, c, func(ctx context.Context, e couponq.Entry) error { second.add(e); return nil })
	require.Eventually(t, func() bool {
		committed.mu.Lock()
		defer committed.mu.Unlock()
		second.mu.Lock()
		defer second.mu.Unlock()
		for _, e := range es {
			if committed.count[e.Key()] == 0 && second.count[e.Key()] == 0 {
				return false
			}
		}
		return true
	}, o.Wait, 10*time.Millisecond, "every entry not committed before the stop arrives after the restart")
}

func testConsumeCancel(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer) {
	stop := consume(t, c, func(ctx context.Context, e couponq.Entry) error { return nil })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	stop()
	assert.Less(t, time.Since(start), 15*time.Second)
}

func testDispatchCancelled(t *testing.T, o Options, d couponq.Dispatcher, c couponq.Consumer) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Dispatch(ctx, batch(3))
	assert.Error(t, err, "a cancelled dispatch must not claim success")
}
