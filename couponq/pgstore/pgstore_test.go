package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/pgstore"
	"github.com/couponq/couponq/couponq/storetest"
	"github.com/couponq/couponq/internal/testenv"
)

// shared is the one pool the tests share; TestMain closes it before checking
// for leaked goroutines (the pool runs a health-check goroutine).
var shared struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.pool != nil {
		shared.pool.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// dsn returns the test server's DSN, or skips (fails under CI).
func dsn(t testing.TB) string {
	t.Helper()
	return testenv.Need(t, "COUPONQ_POSTGRES_DSN", "scripts/postgres.sh")
}

// pool returns the shared pool on a migrated database.
func pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	d := dsn(t)
	shared.once.Do(func() {
		ctx := context.Background()
		cfg, err := pgxpool.ParseConfig(d)
		if err != nil {
			shared.err = err
			return
		}
		cfg.MaxConns = 40
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			err = pgstore.Migrate(ctx, p)
		}
		shared.pool, shared.err = p, err
	})
	require.NoError(t, shared.err)
	return shared.pool
}

func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(pgstore.Config{Pool: pool(t)})
	require.NoError(t, err)
	return s
}

var seq atomic.Int64

// campaign returns a campaign ID no other test (or earlier run against the
// same database) uses.
func campaign(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

func req(c, user string, n int64, stock int64, limit int) couponq.IssueRequest {
	e := couponq.Entry{Campaign: c, User: user, Number: n}
	return couponq.IssueRequest{Campaign: c, User: user, Key: e.Key(), Stock: stock, PerUserLimit: limit}
}

func TestConformance(t *testing.T) {
	pool(t) // skip here, not in every subtest, without a server
	storetest.Run(t, func(t *testing.T) couponq.Store { return newStore(t) })
}

func TestNewValidates(t *testing.T) {
	_, err := pgstore.New(pgstore.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "Pool is required")
	var p *pgxpool.Pool // any non-nil DB will do: New does not touch it
	_, err = pgstore.New(pgstore.Config{Pool: p, MaxRetries: -1})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "negative MaxRetries")
	_, err = pgstore.New(pgstore.Config{Pool: p})
	assert.NoError(t, err)
}

func TestInvalidRequests(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := campaign("invalid")
	for _, r := range []couponq.IssueRequest{
		{Campaign: c, Key: "k", Stock: 1},
		{Campaign: c, User: "u", Key: "k"},
		{Campaign: c, User: "u\x00", Key: "k", Stock: 1},
		{Campaign: c, User: "u", Key: "k\xff", Stock: 1},
	} {
		_, err := s.Issue(ctx, r)
		assert.Error(t, err, "%+v", r)
		_, err = s.IssueBatch(ctx, []couponq.IssueRequest{req(c, "ok", 1, 1, 1), r})
		assert.Error(t, err, "%+v", r)
	}
	n, err := s.IssuedCount(ctx, c)
	require.NoError(t, err)
	assert.Zero(t, n, "a batch with an invalid request issues nothing")
}

// TestMigrate applies the migration to empty schemas: twice in a row, and
// from several connections at once.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	admin := pool(t)
	schemaPool := func(t *testing.T) *pgxpool.Pool {
		schema := fmt.Sprintf("couponq_migrate_%d", seq.Add(1)+time.Now().UnixNano()%1e9)
		_, err := admin.Exec(ctx, "CREATE SCHEMA "+schema)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
		cfg, err := pgxpool.ParseConfig(dsn(t))
		require.NoError(t, err)
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		return p
	}
	works := func(t *testing.T, p *pgxpool.Pool) {
		s, err := pgstore.New(pgstore.Config{Pool: p})
		require.NoError(t, err)
		iss, err := s.Issue(ctx, req("m", "u", 1, 1, 1))
		require.NoError(t, err)
		assert.Equal(t, couponq.Issued, iss.Outcome)
	}

	t.Run("Twice", func(t *testing.T) {
		p := schemaPool(t)
		require.NoError(t, pgstore.Migrate(ctx, p))
		works(t, p)
		require.NoError(t, pgstore.Migrate(ctx, p), "a second Migrate changes nothing")
		n, err := mustStore(t, p).IssuedCount(ctx, "m")
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "a second Migrate keeps the data")
	})
	t.Run("Concurrently", func(t *testing.T) {
		p := schemaPool(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = pgstore.Migrate(ctx, p) })
		}
		wg.Wait()
		for _, err := range errs {
			assert.NoError(t, err)
		}
		works(t, p)
	})
}

func mustStore(t *testing.T, p pgstore.DB) *pgstore.Store {
	s, err := pgstore.New(pgstore.Config{Pool: p})
	require.NoError(t, err)
	return s
}

// TestBatchMixedCampaigns decides one batch holding every outcome across two
// campaigns.
func TestBatchMixedCampaigns(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := campaign("mixed-a"), campaign("mixed-b")
	first, err := s.Issue(ctx, req(a, "u1", 1, 3, 1))
	require.NoError(t, err)
	rs := []couponq.IssueRequest{
		req(b, "u1", 1, 2, 2),  // 0 b: issued
		req(a, "u1", 2, 3, 1),  // 1 a: already issued (the Issue above)
		req(a, "u1", 1, 3, 1),  // 2 a: redelivery of the Issue above
		req(a, "u2", 3, 3, 1),  // 3 a: issued
		req(b, "u1", 2, 2, 2),  // 4 b: issued, u1's second (limit 2), the last unit
		req(a, "u3", 4, 3, 1),  // 5 a: issued, the last unit
		req(a, "u4", 5, 3, 1),  // 6 a: sold out
		req(b, "u1", 1, 2, 2),  // 7 b: the batch's own index 0 again
		req(b, "u2", 3, 2, 2),  // 8 b: sold out
		req(a, "u2", 3, 3, 1),  // 9 a: index 3 again
		req(b, "u1", 4, 2, 2),  // 10 b: u1 at limit 2: already issued
		req(a, "u5", 99, 3, 1), // 11 a: sold out
	}
	got, err := s.IssueBatch(ctx, rs)
	require.NoError(t, err)
	require.Len(t, got, len(rs))
	type w struct {
		o       couponq.Outcome
		soldOut bool
	}
	want := []w{
		{couponq.Issued, false}, {couponq.Duplicate, false}, {couponq.Issued, false}, {couponq.Issued, false},
		{couponq.Issued, true}, {couponq.Issued, true}, {couponq.SoldOut, true}, {couponq.Issued, true},
		{couponq.SoldOut, true}, {couponq.Issued, true}, {couponq.Duplicate, true}, {couponq.SoldOut, true},
	}
	for i := range want {
		assert.Equal(t, want[i], w{got[i].Outcome, got[i].SoldOut}, "index %d", i)
	}
	assert.Equal(t, first.ID, got[2].ID)
	assert.Equal(t, got[0].ID, got[7].ID)
	assert.Equal(t, got[3].ID, got[9].ID)
	ids := map[string]bool{first.ID: true}
	for _, i := range []int{0, 3, 4, 5} {
		assert.False(t, ids[got[i].ID], "index %d: a new ID", i)
		ids[got[i].ID] = true
	}
	for c, n := range map[string]int64{a: 3, b: 2} {
		issued, err := s.IssuedCount(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, n, issued, c)
	}
	h, err := s.Holders(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"u1": 2}, h)
}

// TestMatchesMemory runs random batches and single calls through pgstore and
// memory.Store side by side and requires the same answers: outcomes,
// SoldOut flags, and the same pattern of IDs (a repeated key gets back the
// ID it got the first time, in both).
func TestMatchesMemory(t *testing.T) {
	s := newStore(t)
	ref := memory.NewStore()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	cs := []string{campaign("diff-a"), campaign("diff-b"), campaign("diff-c")}
	stock := map[string]int64{cs[0]: 25, cs[1]: 40, cs[2]: 7}
	limit := map[string]int{cs[0]: 1, cs[1]: 3, cs[2]: 0}
	var keys []couponq.IssueRequest // requests made so far, to redeliver
	pgID := map[string]string{}     // memory's ID -> pgstore's
	memID := map[string]string{}    // pgstore's ID -> memory's
	next := 0
	newReq := func() couponq.IssueRequest {
		if len(keys) > 0 && rng.IntN(4) == 0 {
			return keys[rng.IntN(len(keys))] // a redelivery
		}
		c := cs[rng.IntN(len(cs))]
		next++
		r := req(c, fmt.Sprintf("u%d", rng.IntN(30)), int64(next), stock[c], limit[c])
		if rng.IntN(20) == 0 {
			r.Stock++ // now and then a request with another Stock (the batch gets cut there)
		}
		keys = append(keys, r)
		return r
	}
	for round := range 120 {
		rs := make([]couponq.IssueRequest, 1+rng.IntN(12))
		for i := range rs {
			rs[i] = newReq()
		}
		var got, want []couponq.Issuance
		var err error
		if len(rs) == 1 && rng.IntN(2) == 0 {
			var g couponq.Issuance
			g, err = s.Issue(ctx, rs[0])
			got = []couponq.Issuance{g}
		} else {
			got, err = s.IssueBatch(ctx, rs)
		}
		require.NoError(t, err)
		want, err = ref.IssueBatch(ctx, rs)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i := range want {
			g, w := got[i], want[i]
			require.Equal(t, w.Outcome, g.Outcome, "round %d index %d %+v", round, i, rs[i])
			require.Equal(t, w.SoldOut, g.SoldOut, "round %d index %d %+v", round, i, rs[i])
			if w.Outcome != couponq.Issued {
				require.Empty(t, g.ID)
				continue
			}
			if p, ok := pgID[w.ID]; ok {
				require.Equal(t, p, g.ID, "round %d index %d: a repeated key gets its first ID", round, i)
			} else {
				require.NotContains(t, memID, g.ID, "round %d index %d: a new issuance gets a new ID", round, i)
				pgID[w.ID], memID[g.ID] = g.ID, w.ID
			}
		}
	}
	for _, c := range cs {
		n, err := s.IssuedCount(ctx, c)
		require.NoError(t, err)
		want, err := ref.IssuedCount(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, want, n, c)
		h, err := s.Holders(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, ref.Holders(c), h, c)
	}
}

// TestConcurrentBatches has 8 goroutines send batches of 50 for one campaign,
// with users and keys repeated within and across batches, and checks that
// exactly the stock is issued, nobody holds more than the limit, a key keeps
// one ID, and the counter agrees with the issuance rows.
func TestConcurrentBatches(t *testing.T) {
	s := newStore(t)
	p := pool(t)
	ctx := context.Background()
	c := campaign("concurrent")
	const (
		stock, limit     = 300, 2
		workers, batches = 8, 6
		size, users      = 50, 400
		entries          = 1000 // keys are drawn from this many entries, so keys repeat
	)
	var (
		mu      sync.Mutex
		idOf    = map[string]string{} // key -> ID
		issued  = map[string]bool{}   // distinct IDs
		soldOut int
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range batches {
				rs := make([]couponq.IssueRequest, size)
				for i := range rs {
					e := int64(rng.IntN(entries))
					rs[i] = req(c, fmt.Sprintf("u%d", e%users), e, stock, limit)
				}
				got, err := s.IssueBatch(ctx, rs)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for i, iss := range got {
					switch iss.Outcome {
					case couponq.Issued:
						if id, ok := idOf[rs[i].Key]; ok {
							assert.Equal(t, id, iss.ID, "key %s", rs[i].Key)
						}
						idOf[rs[i].Key] = iss.ID
						issued[iss.ID] = true
					case couponq.SoldOut:
						soldOut++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, issued, stock, "exactly the stock is issued")
	assert.Positive(t, soldOut)
	n, err := s.IssuedCount(ctx, c)
	require.NoError(t, err)
	assert.EqualValues(t, stock, n)
	var rows int64
	require.NoError(t, p.QueryRow(ctx, `SELECT count(*) FROM couponq_issuances WHERE campaign = $1`, c).Scan(&rows))
	assert.EqualValues(t, stock, rows, "one row per issued unit")
	h, err := s.Holders(ctx, c)
	require.NoError(t, err)
	total := 0
	for u, k := range h {
		assert.LessOrEqual(t, k, limit, "user %s", u)
		total += k
	}
	assert.Equal(t, stock, total)
	// Slots are numbered 1..k per user, with no gaps.
	var bad int
	require.NoError(t, p.QueryRow(ctx, `
		SELECT count(*) FROM (
			SELECT user_id FROM couponq_issuances WHERE campaign = $1
			GROUP BY user_id HAVING max(n) <> count(*) OR min(n) <> 1) AS x`, c).Scan(&bad))
	assert.Zero(t, bad)
}

// TestConcurrentCampaigns has batches naming the same campaigns in opposite
// orders run at once: the grants take the campaigns' locks in sorted order,
// so none deadlocks (which would show as 1 s stalls and retries).
func TestConcurrentCampaigns(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	cs := []string{campaign("order-a"), campaign("order-b"), campaign("order-c")}
	const stock = 1000
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for range 20 {
				var rs []couponq.IssueRequest
				for j := range cs {
					c := cs[j]
					if w%2 == 1 {
						c = cs[len(cs)-1-j]
					}
					n := next.Add(1)
					rs = append(rs, req(c, fmt.Sprintf("u%d", n), n, stock, 1))
				}
				got, err := s.IssueBatch(ctx, rs)
				if assert.NoError(t, err) {
					for _, iss := range got {
						assert.Equal(t, couponq.Issued, iss.Outcome)
					}
				}
			}
		})
	}
	wg.Wait()
	assert.Less(t, time.Since(start), 5*time.Second)
	for _, c := range cs {
		n, err := s.IssuedCount(ctx, c)
		require.NoError(t, err)
		assert.EqualValues(t, 8*20, n, c)
	}
}

// TestCancelled checks that a call whose context ends takes no stock, and
// that a context cancelled mid-call leaves the store consistent.
func TestCancelled(t *testing.T) {
	s := newStore(t)
	c := campaign("cancel")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.IssueBatch(ctx, []couponq.IssueRequest{req(c, "u", 1, 1, 1)})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Issue(ctx, req(c, "u", 1, 1, 1))
	assert.ErrorIs(t, err, context.Canceled)
	n, err := s.IssuedCount(context.Background(), c)
	require.NoError(t, err)
	assert.Zero(t, n)

	// Deadlines that end at random points of a call: whatever was decided
	// is decided whole, and a retry with a live context agrees with it.
	for i := range 20 {
		rs := []couponq.IssueRequest{req(c+"-mid", fmt.Sprintf("a%d", i), int64(2*i+1), 1000, 1), req(c+"-mid", fmt.Sprintf("b%d", i), int64(2*i+2), 1000, 1)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
		_, _ = s.IssueBatch(ctx, rs)
		cancel()
		got, err := s.IssueBatch(context.Background(), rs)
		require.NoError(t, err)
		for _, iss := range got {
			assert.Equal(t, couponq.Issued, iss.Outcome)
		}
	}
	n, err = s.IssuedCount(context.Background(), c+"-mid")
	require.NoError(t, err)
	assert.EqualValues(t, 40, n)
}

// TestDB checks that a single *pgx.Conn serves as the Store's DB.
func TestDB(t *testing.T) {
	ctx := context.Background()
	pool(t) // migrated
	conn, err := pgx.Connect(ctx, dsn(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	s := mustStore(t, conn)
	iss, err := s.Issue(ctx, req(campaign("conn"), "u", 1, 1, 1))
	require.NoError(t, err)
	assert.Equal(t, couponq.Issued, iss.Outcome)
	assert.True(t, iss.SoldOut)
}

// TestRaceAtSellOut sends, all at once, several entries of two users for the
// last unit: one entry wins, the winner's other entries hear duplicate
// (the per-user limit is checked before the stock), the other user's hear
// sold_out, and redeliveries of the winning key get its ID back. Calls that
// planned to issue and lost the race must not answer sold_out for a key or
// user the winner just served.
func TestRaceAtSellOut(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for round := range 10 {
		c := campaign("sellout")
		var rs []couponq.IssueRequest
		for i := range 6 {
			rs = append(rs, req(c, "u", int64(i+1), 1, 1), req(c, "v", int64(i+100), 1, 1))
		}
		rs = append(rs, rs...) // every key twice
		got := make([]couponq.Issuance, len(rs))
		var wg sync.WaitGroup
		for i, r := range rs {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					got[i], err = s.Issue(ctx, r)
				} else {
					var b []couponq.Issuance
					if b, err = s.IssueBatch(ctx, []couponq.IssueRequest{r}); err == nil {
						got[i] = b[0]
					}
				}
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		var winner couponq.IssueRequest
		var id string
		for i, iss := range got {
			if iss.Outcome == couponq.Issued {
				if id != "" && rs[i].Key != winner.Key {
					t.Fatalf("round %d: two keys issued: %s and %s", round, winner.Key, rs[i].Key)
				}
				winner, id = rs[i], iss.ID
			}
		}
		require.NotEmpty(t, id, "round %d: nothing issued", round)
		for i, iss := range got {
			assert.True(t, iss.SoldOut, "round %d index %d", round, i)
			switch {
			case rs[i].Key == winner.Key:
				assert.Equal(t, couponq.Issued, iss.Outcome, "round %d index %d", round, i)
				assert.Equal(t, id, iss.ID, "round %d index %d", round, i)
			case rs[i].User == winner.User:
				assert.Equal(t, couponq.Duplicate, iss.Outcome, "round %d index %d", round, i)
			default:
				assert.Equal(t, couponq.SoldOut, iss.Outcome, "round %d index %d", round, i)
			}
		}
	}
}
