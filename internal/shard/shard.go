package shard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// subLineMark separates a sharded campaign's ID from its sub-line number
// in the sub-lines' IDs (couponq refuses campaign IDs containing it).
const subLineMark = "@@"

// Base is what a Queue is built on: a Queue that counts its lines and
// keeps the agenda (memline.Queue and redisq.Queue are).
type Base interface {
	couponq.Queue
	couponq.LineStatser
	couponq.Agenda
}

// Defaults of Config.
const (
	DefaultLag      = 100 * time.Millisecond
	DefaultStatsTTL = time.Second
)

// Config configures a Queue. Zero values take the defaults documented on
// each field.
type Config struct {
	// Queue holds the lines: a campaign of Shards N lives in N lines of its
	// own, "<id>@@0" to "<id>@@N-1", each under its own hash tag in
	// redisq, so a Redis Cluster spreads them over its masters. Other
	// campaigns pass through unchanged. Required. Never closed by Queue.
	Queue Base
	// Catalog tells each campaign's Shards (Campaign.Shards); an unknown
	// campaign counts as one line. It is read on every call, so hand in the
	// catalog.Cache the Service uses. Required.
	Catalog catalog.Catalog
	// Lag is the watermark: Lease hands out only entries admitted at least
	// Lag ago, so an admission still on its way into one sub-line is not
	// overtaken by a later one already in another. It bounds the
	// displacement from admissions slower than Lag and clock differences
	// between API processes larger than it, and delays an entry that finds
	// the line empty by up to Lag. Zero means 100ms; negative means none.
	Lag time.Duration
	// StatsTTL is how long the sub-lines' counts, read for position
	// estimates, are reused. Zero means 1s.
	StatsTTL time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives logs; nil means none.
	Logger *slog.Logger
}

// Queue is a couponq.Queue (and LineStatser, Agenda, Sweeper, Reopener,
// Archiver, IssuedCounter, Seater) that spreads each sharded campaign over
// sub-lines of a Base queue and merges them back in admission-time order.
// Use it wherever the Base would be used: the Service, the Scheduler (as
// Queue and Agenda), the issuer and the HTTP handlers. It is safe for
// concurrent use and starts no goroutines of its own beyond those one call
// waits for.
type Queue struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	stats map[string]*subStats // sharded campaigns the Catalog knows; at most statsMax
}

// statsMax bounds Queue.stats: past it, counts older than StatsTTL are
// dropped (estimate falls back without them), then, if need be, all.
const statsMax = 1024

// subStats is a campaign's sub-lines' counts as last read.
type subStats struct {
	at    time.Time
	lines []couponq.LineStats
}

// New validates cfg and returns a Queue.
func New(cfg Config) (*Queue, error) {
	if cfg.Queue == nil {
		return nil, fmt.Errorf("%w: shard: Queue is required", couponq.ErrInvalidConfig)
	}
	if cfg.Catalog == nil {
		return nil, fmt.Errorf("%w: shard: Catalog is required", couponq.ErrInvalidConfig)
	}
	if cfg.StatsTTL < 0 {
		return nil, fmt.Errorf("%w: shard: StatsTTL must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.Lag == 0 {
		cfg.Lag = DefaultLag
	}
	if cfg.Lag < 0 {
		cfg.Lag = 0
	}
	if cfg.StatsTTL == 0 {
		cfg.StatsTTL = DefaultStatsTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Queue{cfg: cfg, log: log, stats: make(map[string]*subStats)}, nil
}

// SubLine is the ID of a sharded campaign's sub-line k.
func SubLine(campaign string, k int) string {
	return campaign + subLineMark + strconv.Itoa(k)
}

// Of returns the sub-line (0 to shards-1) a user's entries live in: the
// 64-bit FNV-1a hash of the user ID modulo shards, so a user always maps
// to the same sub-line and its duplicates are caught there.
func Of(user string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(user))
	return int(h.Sum64() % uint64(shards))
}

// Parent returns the campaign a sub-line ID belongs to, and false for an
// ID that is not a sub-line's.
func Parent(id string) (string, bool) {
	i := strings.LastIndex(id, subLineMark)
	if i < 0 {
		return "", false
	}
	if _, err := strconv.Atoi(id[i+len(subLineMark):]); err != nil {
		return "", false
	}
	return id[:i], true
}

// shards returns the campaign's sub-line count, 1 when it is not sharded
// or not known (a deleted campaign).
func (q *Queue) shards(ctx context.Context, campaign string) (int, error) {
	if strings.Contains(campaign, subLineMark) {
		return 1, nil
	}
	c, err := q.cfg.Catalog.Campaign(ctx, campaign)
	if errors.Is(err, couponq.ErrUnknownCampaign) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shard: catalog: %w", err)
	}
	return max(c.Shards, 1), nil
}

// global and local convert entry numbers: sub-line k's entry m is the
// campaign's entry m*n + k, so numbers stay unique across sub-lines and
// name their sub-line.
func global(m int64, k, n int) int64 {
	if m <= 0 {
		return m
	}
	return m*int64(n) + int64(k)
}

func local(g int64, n int) (int64, int) {
	if g <= 0 {
		return g, 0
	}
	return g / int64(n), int(g % int64(n))
}

// Admit implements couponq.Admitter: the user is admitted to its sub-line
// alone, in one round trip. MaxWaiting caps each sub-line at its share,
// rounded up. A fresh entry that is first in its sub-line wakes the
// campaign (as admission.Service does for a line), so a scheduler that let
// the campaign rest while this sub-line was empty drives it again.
func (q *Queue) Admit(ctx context.Context, a couponq.Admission) (couponq.Ticket, error) {
	n, err := q.shards(ctx, a.Campaign)
	if err != nil || n == 1 {
		if err != nil {
			return couponq.Ticket{}, err
		}
		return q.cfg.Queue.Admit(ctx, a)
	}
	parent, k := a.Campaign, Of(a.User, n)
	a.Campaign = SubLine(parent, k)
	if a.MaxWaiting > 0 {
		a.MaxWaiting = a.MaxWaiting/int64(n) + min(a.MaxWaiting%int64(n), 1) // rounded up, without overflow
	}
	t, err := q.cfg.Queue.Admit(ctx, a)
	if err != nil {
		return t, err
	}
	if !t.Repeat && t.Position == 1 {
		if err := q.cfg.Queue.Wake(context.WithoutCancel(ctx), parent); err != nil {
			q.log.Warn("couponq: shard: wake after admission", "campaign", parent, "err", err)
		}
	}
	t.Campaign, t.Entry = parent, global(t.Entry, k, n)
	t.Position = q.estimate(parent, k, n, t.Position, false)
	return t, nil
}

// Status implements couponq.StatusReader. A waiting entry's Position is
// estimated from all sub-lines (see estimate).
func (q *Queue) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return couponq.Status{}, err
	}
	if n == 1 {
		return q.cfg.Queue.Status(ctx, campaign, user)
	}
	k := Of(user, n)
	st, err := q.cfg.Queue.Status(ctx, SubLine(campaign, k), user)
	if err != nil {
		return st, err
	}
	st.Campaign, st.Entry = campaign, global(st.Entry, k, n)
	if st.Position > 0 {
		q.refreshStats(ctx, campaign, n)
		st.Position = q.estimate(campaign, k, n, st.Position, true)
	}
	return st, nil
}

// estimate turns a place p in sub-line k into a place in the whole line:
// the line is served in admission-time order and users spread evenly over
// sub-lines, so the entries ahead are about p/w_k of every sub-line's w
// waiting: p * W / w_k, W being all that wait. Counts older than StatsTTL
// (or none, or, for admission, counts not fresh) give p * n. Its error is
// that of a binomial count: about sqrt(P (n-1)) for true place P (2% at
// P = 10,000 with 6 sub-lines).
func (q *Queue) estimate(campaign string, k, n int, p int64, stale bool) int64 {
	if p <= 0 {
		return p
	}
	q.mu.Lock()
	s := q.stats[campaign]
	q.mu.Unlock()
	if s == nil || len(s.lines) != n || (!stale && q.cfg.Now().Sub(s.at) > q.cfg.StatsTTL) {
		return p * int64(n)
	}
	var all int64
	for _, l := range s.lines {
		all += l.Waiting
	}
	wk := s.lines[k].Waiting
	if wk <= 0 || all <= 0 {
		return p * int64(n)
	}
	return max(p, int64(float64(p)*float64(all)/float64(wk)+0.5))
}

// refreshStats reads the sub-lines' counts if the last read is older than
// StatsTTL. A failure keeps the old counts (estimate falls back).
func (q *Queue) refreshStats(ctx context.Context, campaign string, n int) {
	q.mu.Lock()
	s := q.stats[campaign]
	q.mu.Unlock()
	if s != nil && len(s.lines) == n && q.cfg.Now().Sub(s.at) <= q.cfg.StatsTTL {
		return
	}
	lines, err := q.subStats(ctx, campaign, n)
	if err != nil {
		q.log.Debug("couponq: shard: sub-line stats", "campaign", campaign, "err", err)
		return
	}
	q.keepStats(campaign, lines)
}

// keepStats keeps the campaign's sub-line counts for estimate.
func (q *Queue) keepStats(campaign string, lines []couponq.LineStats) {
	now := q.cfg.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.stats[campaign]; !ok && len(q.stats) >= statsMax {
		for id, s := range q.stats {
			if now.Sub(s.at) > q.cfg.StatsTTL {
				delete(q.stats, id)
			}
		}
		if len(q.stats) >= statsMax {
			clear(q.stats)
		}
	}
	q.stats[campaign] = &subStats{at: now, lines: lines}
}

// each calls f for every sub-line concurrently and joins the errors.
func each(n int, f func(k int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { errs[k] = f(k) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (q *Queue) subStats(ctx context.Context, campaign string, n int) ([]couponq.LineStats, error) {
	lines := make([]couponq.LineStats, n)
	err := each(n, func(k int) error {
		var err error
		lines[k], err = q.cfg.Queue.LineStats(ctx, SubLine(campaign, k))
		return err
	})
	return lines, err
}

// LineStats implements couponq.LineStatser: the sub-lines' counts summed,
// SoldOut if any sub-line is marked, and Head 0 (entry numbers of
// sub-lines interleave, so no one number is the head; status streams then
// read each waiting user's place).
func (q *Queue) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return couponq.LineStats{}, err
	}
	if n == 1 {
		return q.cfg.Queue.LineStats(ctx, campaign)
	}
	lines, err := q.subStats(ctx, campaign, n)
	if err != nil {
		return couponq.LineStats{}, fmt.Errorf("shard: line stats %s: %w", campaign, err)
	}
	q.keepStats(campaign, lines)
	var sum couponq.LineStats
	for _, l := range lines {
		sum.Admitted += l.Admitted
		sum.Waiting += l.Waiting
		sum.InFlight += l.InFlight
		sum.Issued += l.Issued
		sum.SoldOut = sum.SoldOut || l.SoldOut
	}
	return sum, nil
}

// Lease implements couponq.Leaser by merging the sub-lines' heads. It
// leases a share of the batch from every sub-line at once (each call also
// returns that sub-line's expired leases to its line first): about
// max/N with room for chance, since users spread evenly. It then takes, in
// admission-time order, the oldest entries admitted at least Lag ago,
// and never one later than the last entry leased from a sub-line that
// gave its whole share (that sub-line may hold older entries not yet
// leased); if that stops it short of max, it leases more from the
// sub-lines that ran out, up to four rounds. What it did not take goes
// back to the heads of its sub-lines. So the entries taken are the oldest
// waiting, up to max: merge order is exact given the admission times,
// which are the Base's (redisq's are exact to its 10 ms clock checkpoints,
// the entries between two spread evenly). A sub-line that fails fails the
// call; what the others leased is released.
func (q *Queue) Lease(ctx context.Context, campaign string, max int, ttl time.Duration) ([]couponq.Entry, error) {
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return q.cfg.Queue.Lease(ctx, campaign, max, ttl)
	}
	if max == 0 {
		// Nothing to take: each sub-line returns its expired leases.
		err := each(n, func(k int) error {
			_, err := q.cfg.Queue.Lease(ctx, SubLine(campaign, k), 0, ttl)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("shard: lease %s: %w", campaign, err)
		}
		return nil, nil
	}
	got := make([][]couponq.Entry, n)
	full := make([]bool, n) // the sub-line gave all it was asked: it may hold more
	ask := make([]int, n)
	share := min(max, max/n+max/(2*n)+16) // the mean, half again, and some
	for k := range ask {
		ask[k] = share
	}
	lag := q.cfg.Now().Add(-q.cfg.Lag)
	var taken []int
	for round := 0; ; round++ {
		err = each(n, func(k int) error {
			if ask[k] == 0 {
				return nil
			}
			es, err := q.cfg.Queue.Lease(ctx, SubLine(campaign, k), ask[k], ttl)
			got[k] = append(got[k], es...)
			full[k] = len(es) == ask[k]
			return err
		})
		if err != nil {
			q.release(ctx, campaign, n, got, make([]int, n))
			return nil, fmt.Errorf("shard: lease %s: %w", campaign, err)
		}
		at := times(got)
		cut := lag
		for k := range n {
			if full[k] && len(at[k]) > 0 {
				if last := at[k][len(at[k])-1]; last.Before(cut) {
					cut = last
				}
			}
		}
		taken = merge(at, max, cut)
		if len(taken) == max || round == 3 {
			break
		}
		more := false
		for k := range n {
			ask[k] = 0
			// Only a sub-line that gave all it was asked and whose last
			// entry is the cut can hold what the batch still lacks.
			if full[k] && len(at[k]) > 0 && !at[k][len(at[k])-1].After(cut) && cut.Before(lag) {
				ask[k], more = max-len(taken), true
			}
		}
		if !more {
			break
		}
	}
	out := make([]couponq.Entry, 0, len(taken))
	used := make([]int, n)
	for _, k := range taken {
		e := got[k][used[k]]
		used[k]++
		e.Campaign, e.Number = campaign, global(e.Number, k, n)
		out = append(out, e)
	}
	q.release(ctx, campaign, n, got, used)
	return out, nil
}

// times returns, for each sub-line's leased entries, the time merge
// orders them by: the admission time, raised to the latest before it in the
// list, so each list is in order even where a Base's admission times are
// not quite in entry order (the memory queue takes them from the callers,
// which race to its lock; redisq's are in order by construction). Without
// it a sub-line whose head came after its last entry could hold the merge
// back for ever.
func times(got [][]couponq.Entry) [][]time.Time {
	at := make([][]time.Time, len(got))
	for k, es := range got {
		at[k] = make([]time.Time, len(es))
		var hi time.Time
		for i, e := range es {
			if i == 0 || e.AdmittedAt.After(hi) {
				hi = e.AdmittedAt
			}
			at[k][i] = hi
		}
	}
	return at
}

// merge picks, in order, up to max entries from the heads of the
// sub-lines' lists (at: times), oldest first, none after cut, and returns
// the sub-line of each. Ties (one instant) go by the place within the tie
// in each list, then by sub-line.
func merge(at [][]time.Time, max int, cut time.Time) []int {
	type head struct {
		k, i, tie int
	}
	heads := make([]head, 0, len(at))
	for k, ts := range at {
		if len(ts) > 0 {
			heads = append(heads, head{k: k})
		}
	}
	less := func(a, b head) bool {
		if c := at[a.k][a.i].Compare(at[b.k][b.i]); c != 0 {
			return c < 0
		}
		if c := cmp.Compare(a.tie, b.tie); c != 0 {
			return c < 0
		}
		return a.k < b.k
	}
	var taken []int
	for len(taken) < max && len(heads) > 0 {
		best := 0
		for h := 1; h < len(heads); h++ {
			if less(heads[h], heads[best]) {
				best = h
			}
		}
		b := &heads[best]
		t := at[b.k][b.i]
		if t.After(cut) {
			break
		}
		taken = append(taken, b.k)
		b.i++
		switch {
		case b.i == len(at[b.k]):
			heads = slices.Delete(heads, best, best+1)
		case at[b.k][b.i].Equal(t):
			b.tie++
		default:
			b.tie = 0
		}
	}
	return taken
}

// release returns what each sub-line leased beyond its first used[k]
// entries. A failure only logs: those entries go back when their lease
// runs out.
func (q *Queue) release(ctx context.Context, campaign string, n int, got [][]couponq.Entry, used []int) {
	rctx := context.WithoutCancel(ctx)
	err := each(n, func(k int) error {
		if rest := got[k][used[k]:]; len(rest) > 0 {
			return q.cfg.Queue.Release(rctx, SubLine(campaign, k), rest)
		}
		return nil
	})
	if err != nil {
		q.log.Warn("couponq: shard: release after merge", "campaign", campaign, "err", err)
	}
}

// route groups the entries (or results: entry gives the entry of each) of
// a sharded campaign by sub-line, in sub-line numbers.
func route[T any](campaign string, n int, xs []T, entry func(*T) *couponq.Entry) map[int][]T {
	by := make(map[int][]T)
	for _, x := range xs {
		e := entry(&x)
		k := Of(e.User, n)
		e.Campaign = SubLine(campaign, k)
		e.Number, _ = local(e.Number, n)
		by[k] = append(by[k], x)
	}
	return by
}

// itself is route's entry for entries.
func itself(e *couponq.Entry) *couponq.Entry { return e }

// perSub runs f for each sub-line with entries, concurrently.
func perSub[T any](by map[int][]T, f func(k int, xs []T) error) error {
	ks := make([]int, 0, len(by))
	for k := range by {
		ks = append(ks, k)
	}
	return each(len(ks), func(i int) error { return f(ks[i], by[ks[i]]) })
}

// Ack implements couponq.Leaser, per sub-line.
func (q *Queue) Ack(ctx context.Context, campaign string, entries []couponq.Entry, ttl time.Duration) error {
	n, err := q.shards(ctx, campaign)
	if err != nil || n == 1 {
		if err != nil {
			return err
		}
		return q.cfg.Queue.Ack(ctx, campaign, entries, ttl)
	}
	return perSub(route(campaign, n, entries, itself), func(k int, es []couponq.Entry) error {
		return q.cfg.Queue.Ack(ctx, SubLine(campaign, k), es, ttl)
	})
}

// Release implements couponq.Leaser, per sub-line.
func (q *Queue) Release(ctx context.Context, campaign string, entries []couponq.Entry) error {
	n, err := q.shards(ctx, campaign)
	if err != nil || n == 1 {
		if err != nil {
			return err
		}
		return q.cfg.Queue.Release(ctx, campaign, entries)
	}
	return perSub(route(campaign, n, entries, itself), func(k int, es []couponq.Entry) error {
		return q.cfg.Queue.Release(ctx, SubLine(campaign, k), es)
	})
}

// Record implements couponq.Recorder, per sub-line.
func (q *Queue) Record(ctx context.Context, campaign string, results ...couponq.Result) error {
	n, err := q.shards(ctx, campaign)
	if err != nil || n == 1 {
		if err != nil {
			return err
		}
		return q.cfg.Queue.Record(ctx, campaign, results...)
	}
	by := route(campaign, n, results, func(r *couponq.Result) *couponq.Entry { return &r.Entry })
	return perSub(by, func(k int, rs []couponq.Result) error {
		return q.cfg.Queue.Record(ctx, SubLine(campaign, k), rs...)
	})
}

// all runs f for the campaign itself and, if sharded, every sub-line.
func (q *Queue) all(ctx context.Context, campaign string, f func(id string) error) error {
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return err
	}
	if n == 1 {
		return f(campaign)
	}
	return each(n+1, func(k int) error {
		if k == n {
			return f(campaign)
		}
		return f(SubLine(campaign, k))
	})
}

// MarkSoldOut implements couponq.Recorder: every sub-line is marked.
func (q *Queue) MarkSoldOut(ctx context.Context, campaign string) error {
	return q.all(ctx, campaign, func(id string) error { return q.cfg.Queue.MarkSoldOut(ctx, id) })
}

// Reopen implements couponq.Reopener, for every sub-line; an error if the
// Base cannot reopen.
func (q *Queue) Reopen(ctx context.Context, campaign string) error {
	r, ok := q.cfg.Queue.(couponq.Reopener)
	if !ok {
		return fmt.Errorf("%w: shard: the Base queue cannot reopen", errors.ErrUnsupported)
	}
	return q.all(ctx, campaign, func(id string) error { return r.Reopen(ctx, id) })
}

// Archive implements couponq.Archiver, for every sub-line; an error if the
// Base cannot archive.
func (q *Queue) Archive(ctx context.Context, campaign string, retention time.Duration) error {
	a, ok := q.cfg.Queue.(couponq.Archiver)
	if !ok {
		return fmt.Errorf("%w: shard: the Base queue cannot archive", errors.ErrUnsupported)
	}
	err := q.all(ctx, campaign, func(id string) error { return a.Archive(ctx, id, retention) })
	if err == nil {
		q.mu.Lock()
		delete(q.stats, campaign)
		q.mu.Unlock()
	}
	return err
}

// IssuedCount implements couponq.IssuedCounter: the sub-lines' counts
// summed; an error if the Base cannot count.
func (q *Queue) IssuedCount(ctx context.Context, campaign string) (int64, error) {
	c, ok := q.cfg.Queue.(couponq.IssuedCounter)
	if !ok {
		return 0, fmt.Errorf("%w: shard: the Base queue cannot count issuances", errors.ErrUnsupported)
	}
	var mu sync.Mutex
	var sum int64
	err := q.all(ctx, campaign, func(id string) error {
		v, err := c.IssuedCount(ctx, id)
		mu.Lock()
		sum += v
		mu.Unlock()
		return err
	})
	return sum, err
}

// Seat implements couponq.Seater for campaigns of one line; a sharded
// campaign has no pre-queue (Campaign.Validate refuses both).
func (q *Queue) Seat(ctx context.Context, campaign string, seed uint64) (couponq.Seating, error) {
	s, ok := q.cfg.Queue.(couponq.Seater)
	if !ok {
		return couponq.Seating{}, fmt.Errorf("%w: shard: the Base queue cannot seat a pre-queue", errors.ErrUnsupported)
	}
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return couponq.Seating{}, err
	}
	if n > 1 {
		return couponq.Seating{}, fmt.Errorf("%w: shard: %s is sharded: no pre-queue", errors.ErrUnsupported, campaign)
	}
	return s.Seat(ctx, campaign, seed)
}

// Seal implements couponq.Seater for campaigns of one line.
func (q *Queue) Seal(ctx context.Context, campaign string) error {
	s, ok := q.cfg.Queue.(couponq.Seater)
	if !ok {
		return fmt.Errorf("%w: shard: the Base queue cannot seat a pre-queue", errors.ErrUnsupported)
	}
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return err
	}
	if n > 1 {
		return fmt.Errorf("%w: shard: %s is sharded: no pre-queue", errors.ErrUnsupported, campaign)
	}
	return s.Seal(ctx, campaign)
}

// Wake implements couponq.Agenda.
func (q *Queue) Wake(ctx context.Context, campaign string) error {
	return q.cfg.Queue.Wake(ctx, campaign)
}

// Awake implements couponq.Agenda. A sub-line the Base's sweep woke rests
// if empty, else is reported as its campaign (woken in its place), so the
// scheduler only ever sees campaign IDs.
func (q *Queue) Awake(ctx context.Context) ([]string, error) {
	ids, err := q.cfg.Queue.Awake(ctx)
	if err != nil {
		return nil, err
	}
	out := ids[:0:0]
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range ids {
		parent, ok := Parent(id)
		if !ok {
			out = append(out, id)
			continue
		}
		rested, err := q.cfg.Queue.Rest(ctx, id)
		if err != nil {
			q.log.Debug("couponq: shard: rest sub-line", "sub_line", id, "err", err)
		}
		if rested || seen[parent] {
			continue
		}
		if err := q.cfg.Queue.Wake(ctx, parent); err != nil {
			return nil, err
		}
		seen[parent] = true
		out = append(out, parent)
	}
	return out, nil
}

// Rest implements couponq.Agenda. A sharded campaign rests only when every
// sub-line is empty, and the sub-lines are read again after: an admission
// that wrote in between is seen and the campaign woken again, and one that
// writes after wakes it itself (Admit, first in its sub-line).
func (q *Queue) Rest(ctx context.Context, campaign string) (bool, error) {
	n, err := q.shards(ctx, campaign)
	if err != nil {
		return false, err
	}
	if n == 1 {
		return q.cfg.Queue.Rest(ctx, campaign)
	}
	busy := func() (bool, error) {
		lines, err := q.subStats(ctx, campaign, n)
		if err != nil {
			return true, err
		}
		for _, l := range lines {
			if l.Waiting > 0 || l.InFlight > 0 {
				return true, nil
			}
		}
		return false, nil
	}
	if b, err := busy(); b || err != nil {
		return false, err
	}
	rested, err := q.cfg.Queue.Rest(ctx, campaign)
	if !rested || err != nil {
		return false, err
	}
	if b, err := busy(); b || err != nil {
		if werr := q.cfg.Queue.Wake(context.WithoutCancel(ctx), campaign); werr != nil {
			return false, errors.Join(err, werr)
		}
		return false, err
	}
	return true, nil
}

// Sweep wakes every campaign with entries (scheduler.Sweeper) through the
// Base's sweep; its sub-lines become their campaign in Awake. Zero and no
// error if the Base cannot sweep.
func (q *Queue) Sweep(ctx context.Context) (int, error) {
	s, ok := q.cfg.Queue.(interface {
		Sweep(ctx context.Context) (int, error)
	})
	if !ok {
		return 0, nil
	}
	return s.Sweep(ctx)
}

var (
	_ couponq.Queue         = (*Queue)(nil)
	_ couponq.LineStatser   = (*Queue)(nil)
	_ couponq.Agenda        = (*Queue)(nil)
	_ couponq.Reopener      = (*Queue)(nil)
	_ couponq.Archiver      = (*Queue)(nil)
	_ couponq.IssuedCounter = (*Queue)(nil)
	_ couponq.Seater        = (*Queue)(nil)
)
