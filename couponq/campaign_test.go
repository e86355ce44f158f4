package couponq_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
)

// TestCampaignBounds puts each bounded field just within and just beyond
// its bound: within validates, beyond is refused with ErrInvalidCampaign
// and an error that names the field and the bound.
func TestCampaignBounds(t *testing.T) {
	opens := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		field  string
		ok     func(*couponq.Campaign)
		beyond func(*couponq.Campaign)
		says   []string // in the error of beyond
	}{
		{"stock low", func(c *couponq.Campaign) { c.Stock = 1 },
			func(c *couponq.Campaign) { c.Stock = 0 }, []string{"stock must be > 0"}},
		{"stock high", func(c *couponq.Campaign) { c.Stock = 1e15 },
			func(c *couponq.Campaign) { c.Stock = 1e15 + 1 }, []string{"stock", "1000000000000000"}},
		{"stock max int64", func(c *couponq.Campaign) { c.Stock = 1 << 40 },
			func(c *couponq.Campaign) { c.Stock = math.MaxInt64 }, []string{"stock", "1000000000000000"}},
		{"per-user limit low", func(c *couponq.Campaign) { c.PerUserLimit = 0 },
			func(c *couponq.Campaign) { c.PerUserLimit = -1 }, []string{"per-user limit"}},
		{"per-user limit high", func(c *couponq.Campaign) { c.PerUserLimit = 1_000_000 },
			func(c *couponq.Campaign) { c.PerUserLimit = 1_000_001 }, []string{"per-user limit", "1000000"}},
		{"batch size low", func(c *couponq.Campaign) { c.BatchSize = 1 },
			func(c *couponq.Campaign) { c.BatchSize = -1 }, []string{"batch size", "100000"}},
		{"batch size high", func(c *couponq.Campaign) { c.BatchSize = 100_000 },
			func(c *couponq.Campaign) { c.BatchSize = 100_001 }, []string{"batch size", "100000"}},
		{"batch size 2^61 (issue 20)", func(c *couponq.Campaign) { c.BatchSize = 5000 },
			func(c *couponq.Campaign) { c.BatchSize = 1 << 61 }, []string{"batch size", "100000"}},
		{"batch size max int (issue 20)", func(c *couponq.Campaign) { c.BatchSize = 0 },
			func(c *couponq.Campaign) { c.BatchSize = math.MaxInt }, []string{"batch size", "100000"}},
		{"interval low", func(c *couponq.Campaign) { c.Interval = time.Millisecond },
			func(c *couponq.Campaign) { c.Interval = time.Millisecond - 1 }, []string{"interval", "1ms", "1h0m0s"}},
		{"interval negative", func(c *couponq.Campaign) { c.Interval = 0 },
			func(c *couponq.Campaign) { c.Interval = -time.Second }, []string{"interval", "1ms", "1h0m0s"}},
		{"interval high", func(c *couponq.Campaign) { c.Interval = time.Hour },
			func(c *couponq.Campaign) { c.Interval = time.Hour + 1 }, []string{"interval", "1h0m0s"}},
		{"interval_ms 9223372036854 (issue 20)", func(c *couponq.Campaign) { c.Interval = 59 * time.Minute },
			func(c *couponq.Campaign) { c.Interval = 9223372036854 * time.Millisecond }, []string{"interval", "1h0m0s"}},
		{"max waiting low", func(c *couponq.Campaign) { c.MaxWaiting = 0 },
			func(c *couponq.Campaign) { c.MaxWaiting = -1 }, []string{"max waiting", "1000000000000000"}},
		{"max waiting high", func(c *couponq.Campaign) { c.MaxWaiting = 1e15 },
			func(c *couponq.Campaign) { c.MaxWaiting = 1e15 + 1 }, []string{"max waiting", "1000000000000000"}},
		{"shards low", func(c *couponq.Campaign) { c.Shards = 0 },
			func(c *couponq.Campaign) { c.Shards = -1 }, []string{"shards", "64"}},
		{"shards high", func(c *couponq.Campaign) { c.Shards = couponq.MaxShards },
			func(c *couponq.Campaign) { c.Shards = couponq.MaxShards + 1 }, []string{"shards", "64"}},
		{"pre-queue low", func(c *couponq.Campaign) { c.OpensAt, c.PreQueue = opens, 0 },
			func(c *couponq.Campaign) { c.OpensAt, c.PreQueue = opens, -1 }, []string{"pre-queue", "168h0m0s"}},
		{"pre-queue high", func(c *couponq.Campaign) { c.OpensAt, c.PreQueue = opens, 7*24*time.Hour },
			func(c *couponq.Campaign) { c.OpensAt, c.PreQueue = opens, 7*24*time.Hour+1 }, []string{"pre-queue", "168h0m0s"}},
		{"opens at first year", func(c *couponq.Campaign) { c.OpensAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) },
			func(c *couponq.Campaign) { c.OpensAt = time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC) }, []string{"opens at", "1 to 9999"}},
		{"opens at last year", func(c *couponq.Campaign) { c.OpensAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) },
			func(c *couponq.Campaign) { c.OpensAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"opens at", "1 to 9999"}},
		{"closes at last year", func(c *couponq.Campaign) { c.ClosesAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) },
			func(c *couponq.Campaign) { c.ClosesAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"closes at", "1 to 9999"}},
		{"closes at, years in UTC", func(c *couponq.Campaign) {
			c.ClosesAt = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -30*60))
		}, func(c *couponq.Campaign) {
			c.ClosesAt = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -2*3600)) // 10000-01-01T01:00Z
		}, []string{"closes at", "1 to 9999"}},
		{"version", func(c *couponq.Campaign) { c.Version = math.MaxInt64 },
			func(c *couponq.Campaign) { c.Version = -1 }, []string{"version"}},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := couponq.Campaign{ID: "drop", Stock: 10}
			tc.ok(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("within the bound: Validate(%+v) = %v", c, err)
			}
			c = couponq.Campaign{ID: "drop", Stock: 10}
			tc.beyond(&c)
			err := c.Validate()
			if !errors.Is(err, couponq.ErrInvalidCampaign) {
				t.Fatalf("beyond the bound: Validate(%+v) = %v, want ErrInvalidCampaign", c, err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error %q does not say %q", err, s)
				}
			}
			var fe interface{ CampaignField() string }
			if !errors.As(err, &fe) {
				t.Fatalf("the error %q does not name its field (CampaignField)", err)
			}
			if _, ok := reflect.TypeFor[couponq.Campaign]().FieldByName(fe.CampaignField()); !ok {
				t.Errorf("CampaignField() = %q, not a field of Campaign", fe.CampaignField())
			}
			about := strings.ReplaceAll(strings.TrimSuffix(strings.Fields(tc.field)[0], "_ms"), "-", "")
			if !strings.HasPrefix(strings.ToLower(fe.CampaignField()), about) {
				t.Errorf("CampaignField() = %q, want the field %s", fe.CampaignField(), tc.field)
			}
		})
	}
}

// TestCampaignBoundsCoverTheRepository: the largest values the examples,
// benchmarks and tests use validate.
func TestCampaignBoundsCoverTheRepository(t *testing.T) {
	for _, c := range []couponq.Campaign{
		{ID: "bench", Stock: 1 << 40, BatchSize: 5000, Interval: time.Millisecond}, // examples/bench
		{ID: "durable", Stock: 1 << 40, BatchSize: 100, Interval: time.Second},     // faultrun
		{ID: "pre", Stock: 1, OpensAt: time.Now().Add(time.Hour), PreQueue: time.Hour},
		{ID: "capped", Stock: 1000, MaxWaiting: 10_000, PerUserLimit: 4, Shards: couponq.MaxShards},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
}

// TestEstimatedWait: one Interval per BatchSize entries up to the position,
// rounded up; positions past the stock count as Stock + 1.
func TestEstimateWaitPace(t *testing.T) {
	c := couponq.Campaign{ID: "drop", Stock: 10, BatchSize: 3, Interval: 2 * time.Second}
	for _, tc := range []struct {
		position int64
		want     time.Duration
	}{
		{-5, 0}, {0, 0}, {1, 2 * time.Second}, {3, 2 * time.Second}, {4, 4 * time.Second},
		{10, 8 * time.Second}, {11, 8 * time.Second}, // Stock + 1 = 11: fourth tick
		{12, 8 * time.Second}, {math.MaxInt64, 8 * time.Second},
	} {
		if got := rateWait(c, tc.position); got != tc.want {
			t.Errorf("EstimateWait(%d) = %s, want %s", tc.position, got, tc.want)
		}
	}
	if got := rateWait((couponq.Campaign{ID: "d", Stock: 5}), 5); got != time.Second {
		t.Errorf("defaults: EstimateWait(5) = %s, want 1s (100 per 1s)", got)
	}
	paused := c
	paused.Paused = true
	if got, known := paused.EstimateWait(4, -1); known || got != 0 {
		t.Errorf("paused: EstimateWait(4) = %s, %v, want no estimate", got, known)
	}
}

// TestEstimateWait: unknown while paused or not waiting; bounded by the
// stock that remains.
func TestEstimateWait(t *testing.T) {
	c := couponq.Campaign{ID: "drop", Stock: 10, BatchSize: 2, Interval: time.Second}
	for _, tc := range []struct {
		position, claimed int64
		paused            bool
		want              time.Duration
		known             bool
	}{
		{0, 0, false, 0, false},
		{-1, 0, false, 0, false},
		{3, 0, true, 0, false},
		{3, 0, false, 2 * time.Second, true},
		{3, -1, false, 2 * time.Second, true},            // claimed unknown
		{9, 6, false, 3 * time.Second, true},             // 4 remain: position 5 (past them) hears at the third tick
		{1000, 6, false, 3 * time.Second, true},          // as far back as it likes
		{1000, -1, false, 6 * time.Second, true},         // unknown: bounded by Stock + 1
		{4, 10, false, time.Second, true},                // nothing remains: the next tick tells
		{4, 50, false, time.Second, true},                // more claimed than the stock (lowered)
		{4, math.MaxInt64, false, time.Second, true},     // no overflow
		{math.MaxInt64, 0, false, 6 * time.Second, true}, // Stock + 1 = 11 -> 6 ticks
	} {
		c := c
		c.Paused = tc.paused
		got, known := c.EstimateWait(tc.position, tc.claimed)
		if got != tc.want || known != tc.known {
			t.Errorf("paused %v: EstimateWait(%d, %d) = %s, %v; want %s, %v", tc.paused, tc.position, tc.claimed, got, known, tc.want, tc.known)
		}
	}
}

// TestEstimatedWaitSaturates: the values of issue 20 (and worse, such as a
// Registry holding records written before the bounds) give a wait that is
// never negative and never falls as the position grows.
func TestEstimatedWaitSaturates(t *testing.T) {
	const longest = time.Duration(math.MaxInt64)
	for _, c := range []couponq.Campaign{
		{ID: "a", Stock: math.MaxInt64, BatchSize: math.MaxInt, Interval: time.Second},
		{ID: "b", Stock: math.MaxInt64, BatchSize: 1, Interval: 9223372036854 * time.Millisecond},
		{ID: "c", Stock: math.MaxInt64, BatchSize: 1 << 61},
		{ID: "d", Stock: math.MaxInt64, BatchSize: 1, Interval: time.Hour},
		{ID: "e", Stock: 1e15, BatchSize: 1, Interval: time.Hour},
		{ID: "f", Stock: math.MaxInt64, BatchSize: -7, Interval: -time.Second},
		{ID: "g", Stock: -3, BatchSize: 1, Interval: time.Millisecond},
	} {
		prev := time.Duration(0)
		for _, p := range []int64{1, 2, 1000, 1 << 31, 1 << 40, 1e15, 1e15 + 1, 1 << 61, math.MaxInt64 - 1, math.MaxInt64} {
			got := rateWait(c, p)
			if got < 0 || got < prev {
				t.Errorf("%+v: EstimateWait(%d, -1) = %s after %s", c, p, got, prev)
			}
			prev = got
			w, known := c.EstimateWait(p, 0)
			if !known || w < 0 || w > got && c.Stock > 0 {
				t.Errorf("%+v: EstimateWait(%d, 0) = %s, %v (with -1: %s)", c, p, w, known, got)
			}
		}
	}
	if got := rateWait((couponq.Campaign{ID: "d", Stock: math.MaxInt64, BatchSize: 1, Interval: time.Hour}), math.MaxInt64); got != longest {
		t.Errorf("EstimateWait saturates at %s, got %s", longest, got)
	}
	c := couponq.Campaign{ID: "batch", Stock: math.MaxInt64, BatchSize: math.MaxInt, Interval: time.Second}
	if got := rateWait(c, math.MaxInt64); got != time.Second {
		t.Errorf("BatchSize MaxInt: EstimateWait(MaxInt64) = %s, want one tick", got)
	}
}

// rateWait is the wait at position counting only the pace and the whole
// Stock: EstimateWait with nothing claimed known, as if not paused.
func rateWait(c couponq.Campaign, position int64) time.Duration {
	c.Paused = false
	w, _ := c.EstimateWait(position, -1)
	return w
}
