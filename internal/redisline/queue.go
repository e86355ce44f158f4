package redisline

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

var (
	// lineLua is the line's layout (its keys, counts and buckets) and how
	// to read it, put in front of every script that reads or writes the
	// line; lineWriteLua adds writing it, lineMoreLua what only the
	// scripts that take entries out of line or put them back use. A script
	// defines its functions on every call, so each takes only what it uses.
	//go:embed lua/line.lua
	lineLua string
	//go:embed lua/line_write.lua
	lineWriteLua string
	//go:embed lua/line_more.lua
	lineMoreLua string
	//go:embed lua/admit.lua
	admitLua string
	//go:embed lua/lease.lua
	leaseLua string
	//go:embed lua/ack.lua
	ackLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/record.lua
	recordLua string
	//go:embed lua/status.lua
	statusLua string

	admitScript   = redis.NewScript(lineLua + lineWriteLua + admitLua)
	leaseScript   = redis.NewScript(lineLua + lineWriteLua + lineMoreLua + leaseLua)
	ackScript     = redis.NewScript(lineLua + lineWriteLua + lineMoreLua + ackLua)
	releaseScript = redis.NewScript(lineLua + lineWriteLua + lineMoreLua + releaseLua)
	recordScript  = redis.NewScript(lineLua + lineWriteLua + lineMoreLua + recordLua)
	statusScript  = redis.NewScript(lineLua + statusLua)
)

// AdmitScript is the admission Lua script (the line's layout, then the
// admission), exported so benchmarks can run the very same script with
// redis-benchmark. It takes AdmitKeys as KEYS.
func AdmitScript() string { return lineLua + lineWriteLua + admitLua }

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "couponq"

// Config configures a Queue. Zero values take the defaults documented on
// each field.
type Config struct {
	// Client is the host's Redis client: a single node, Sentinel or Cluster
	// client. Required. The Queue never closes it.
	Client redis.UniversalClient
	// Prefix starts every key, so several hosts can share one Redis. Empty
	// means "couponq". Keys look like "couponq:{campaign}:line".
	Prefix string
	// MaxRecover is the most expired leases one Lease call returns to the
	// line, and the most waiting entries of a sold-out campaign it resolves
	// as sold out, bounding how long one script call runs. Zero means 10,000.
	MaxRecover int
	// Admissions of one campaign that arrive while another of its
	// admissions is on its way to Redis are coalesced into one script call
	// of up to CoalesceMax users (default 256), admitted in arrival order;
	// each caller still gets its own ticket. It is adaptive: a lone
	// admission goes out at once, alone (no timer, no added wait), and
	// batching happens only while a call is already in flight, so it costs
	// nothing at low load and saves round trips under a burst. A caller
	// whose context ends while its admission waits to be sent is taken out
	// of the queue (nothing is written; it hears its context's error); one
	// whose admission was already sent waits for that call (bounded by the
	// batch's own 5 s timeout) and hears what Redis answered, so an error
	// never hides an admission that went through. Campaigns coalesce
	// apart: their keys live in different hash slots (different masters on
	// a Cluster), and on one Redis their calls already share the client's
	// connection pool.
	//
	// Status reads coalesce the same way, as one pipeline of the status
	// script per campaign, up to CoalesceMax reads (a read changes
	// nothing: a caller whose context ends just leaves).
	//
	// DisableCoalescing sends every admission and every status read as its
	// own call.
	DisableCoalescing bool
	CoalesceMax       int
	// ReplicaAcks is how many replicas must acknowledge an admission's
	// write (Redis WAIT, on the admission's connection) before it is
	// answered; 0, the default, answers once the master has it. Fewer
	// acknowledgements within ReplicaTimeout make the admission's callers
	// hear an error wrapping couponq.ErrUnavailable and ErrNotReplicated
	// instead of a ticket (the entry may still be in the line; pressing
	// again answers it). See replicas.go.
	ReplicaAcks int
	// ReplicaTimeout bounds that wait; zero means DefaultReplicaTimeout
	// (500 ms). Keep it below the client's ReadTimeout (3 s by default).
	ReplicaTimeout time.Duration
}

// Queue is a couponq.Queue on Redis. Each operation is one atomic Lua
// script (one round trip); all keys of a campaign share the hash tag
// {campaign}, so it works on Redis Cluster.
//
// Layout per campaign: a counter for entry numbers; the line, in buckets
// (the waiting users in order buckets of 32 entry numbers, an index of
// user to entry number in 8,192 hash buckets, the count waiting, and a
// tree of the entries out of line per order bucket, from which positions
// are computed: see the package doc; nothing else is stored per waiting
// entry); the entries in flight, a sorted set of users scored by deadline
// and a hash of their entry numbers; a hash of decided outcomes; a sold-out
// flag; and a small sorted set of clock checkpoints (one per 10 ms of
// admissions at most), from which a leased entry's AdmittedAt is read, to
// within 10 ms; and, once Seat was called, the record of the pre-queue's
// seating. Request IDs are not kept.
type Queue struct {
	rdb        redis.UniversalClient
	prefix     string
	maxRecover int
	coalesce   *coalescer
	statuses   *statusBatcher // nil with DisableCoalescing
	// replicaAcks and replicaTimeout are Config's (replicas.go).
	replicaAcks    int
	replicaTimeout time.Duration
	// keyCache holds the key names of campaigns whose keys Redis holds (see
	// keys), so hot paths build no key strings; at most keyCacheMax of them
	// (keyCount), so it stays small whatever IDs callers send.
	keyCache sync.Map // campaign -> Keys
	keyCount atomic.Int64
}

// keyCacheMax bounds Queue.keyCache: past it, the cache starts over.
const keyCacheMax = 1024

var (
	_ couponq.Queue         = (*Queue)(nil)
	_ couponq.IssuedCounter = (*Queue)(nil)
)

// New validates cfg and returns a Queue.
func New(cfg Config) (*Queue, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: redisq: Client is required", couponq.ErrInvalidConfig)
	}
	if cfg.MaxRecover < 0 || cfg.CoalesceMax < 0 {
		return nil, fmt.Errorf("%w: redisq: MaxRecover and CoalesceMax must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxRecover == 0 {
		cfg.MaxRecover = 10_000
	}
	if err := replicaConfig(&cfg); err != nil {
		return nil, err
	}
	q := &Queue{rdb: cfg.Client, prefix: cfg.Prefix, maxRecover: cfg.MaxRecover,
		replicaAcks: cfg.ReplicaAcks, replicaTimeout: cfg.ReplicaTimeout}
	if !cfg.DisableCoalescing {
		if cfg.CoalesceMax == 0 {
			cfg.CoalesceMax = 256
		}
		q.coalesce = newCoalescer(q, cfg.CoalesceMax)
		q.statuses = newStatusBatcher(q, cfg.CoalesceMax)
	}
	return q, nil
}

// Keys names the Redis keys of one campaign. The line's buckets, named
// from Line (Keys.OrderBucket, Keys.UserBucket), are not listed: they exist
// only while someone waits.
type Keys struct {
	Seq, Line, Flight, Held, Done, SoldOut, Clock string
	// Out counts, per order bucket, the entries out of the line, from which
	// positions are computed (a Fenwick tree, see doc.go).
	Out string
	// Issued counts the distinct entries recorded as issued.
	Issued string
	// Trace holds the trace carriers of traced entries (Admission.Trace)
	// until they are decided; it exists only while some are.
	Trace string
	// Seat records the pre-queue's seating (Queue.Seat): seed, n, the
	// step it stands at and whether it is done, and the pre-queue's end
	// (Queue.Seal); it exists once Seal or Seat was called.
	Seat             string
	V1Users, V1Count string
}

// KeysFor returns the keys of campaign under prefix. The names share one
// allocation.
func KeysFor(prefix, campaign string) Keys {
	var b strings.Builder
	b.Grow(len(keySuffixes)*(len(prefix)+len(campaign)+4) + keySuffixesLen)
	ends := [len(keySuffixes)]int{}
	for i, s := range keySuffixes {
		b.WriteString(prefix)
		b.WriteString(":{")
		b.WriteString(campaign)
		b.WriteString("}:")
		b.WriteString(s)
		ends[i] = b.Len()
	}
	all := b.String()
	name := func(i int) string {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return all[start:ends[i]]
	}
	return Keys{
		Seq: name(0), Line: name(1), Out: name(2), Flight: name(3), Held: name(4),
		Done: name(5), SoldOut: name(6), Clock: name(7), Issued: name(8), Trace: name(9),
		Seat: name(10), V1Users: name(11), V1Count: name(12),
	}
}

// keySuffixes are the names of a campaign's keys after "prefix:{campaign}:",
// in the order KeysFor reads them.
var keySuffixes = [...]string{"seq", "line", "out", "flight", "held", "done", "soldout", "clock", "issued", "trace", "seat", "v1:users", "v1:count"}

// keySuffixesLen is the length of keySuffixes, joined.
var keySuffixesLen = func() int {
	n := 0
	for _, s := range keySuffixes {
		n += len(s)
	}
	return n
}()

// orderBucketWidth is how many entry numbers one order bucket holds
// (BUCKET in lua/line.lua).
const orderBucketWidth = 32

// OrderBucket returns the key of order bucket b: the users waiting with an
// entry number n of n / 32 = b.
func (k Keys) OrderBucket(b int64) string {
	return strings.TrimSuffix(k.Line, "line") + "q:" + strconv.FormatInt(b, 10)
}

// UserBucket returns the key of user-index bucket i (0 <= i < 8192).
func (k Keys) UserBucket(i int64) string {
	return strings.TrimSuffix(k.Line, "line") + "u:" + strconv.FormatInt(i, 10)
}

// keys returns the campaign's key names, and remembers them: for the
// paths that write the campaign's keys (admission, the hand-off), which the
// node takes only for campaigns its registry knows. A path anyone may take
// for any ID (Status of a campaign that never was) uses lookKeys instead,
// so made-up IDs leave nothing behind.
func (q *Queue) keys(campaign string) Keys {
	k, cached := q.lookKeys(campaign)
	if !cached {
		q.remember(campaign, k)
	}
	return k
}

// lookKeys returns the campaign's key names from the cache, or builds them
// without remembering them; cached says which.
func (q *Queue) lookKeys(campaign string) (k Keys, cached bool) {
	if v, ok := q.keyCache.Load(campaign); ok {
		return v.(Keys), true
	}
	return KeysFor(q.prefix, campaign), false
}

// remember caches the campaign's key names. Past keyCacheMax campaigns the
// cache starts over (a campaign still in use is remembered again at its
// next write), so its size is bounded whatever IDs it is given.
func (q *Queue) remember(campaign string, k Keys) {
	if _, loaded := q.keyCache.LoadOrStore(campaign, k); loaded {
		return
	}
	if n := q.keyCount.Add(1); n > keyCacheMax && q.keyCount.CompareAndSwap(n, 0) {
		q.keyCache.Clear()
	}
}

// forget drops the campaign's key names from the cache.
func (q *Queue) forget(campaign string) {
	if _, ok := q.keyCache.LoadAndDelete(campaign); ok {
		q.keyCount.Add(-1)
	}
}

// AdmitKeys returns, in order, the KEYS the admission script takes.
func (k Keys) AdmitKeys() []string {
	return []string{k.Seq, k.Line, k.Held, k.Done, k.SoldOut, k.Clock, k.Flight, k.Issued, k.Trace}
}

// Admit implements couponq.Admitter.
func (q *Queue) Admit(ctx context.Context, a couponq.Admission) (couponq.Ticket, error) {
	if err := (couponq.Request{Campaign: a.Campaign, User: a.User, RequestID: a.RequestID}).Validate(); err != nil {
		return couponq.Ticket{}, err
	}
	if q.coalesce != nil {
		return q.coalesce.admit(ctx, a)
	}
	return q.admitOne(ctx, a)
}

func (q *Queue) admitOne(ctx context.Context, a couponq.Admission) (couponq.Ticket, error) {
	at := a.At
	if at.IsZero() {
		at = time.Now()
	}
	k := q.keys(a.Campaign)
	res, err := q.runAdmit(ctx, admitScript, k, a.User, max(a.PerUserLimit, 1), at.UnixMilli(), max(a.MaxWaiting, 0), a.Trace, userBucket(a.User))
	if err != nil {
		return couponq.Ticket{}, fmt.Errorf("redisq: admit: %w", err)
	}
	return ticket(a, res)
}

// userBuckets is line.lua's UBUCKETS: the user index's bucket count.
const userBuckets = 8192

// userBucket is the user's index bucket as line.lua's line_ukey computes
// it (the first 16 bits of the user's SHA-1, modulo userBuckets): the
// admission scripts take it from here, which costs Redis a SHA-1 less per
// admission.
func userBucket(user string) int {
	sum := sha1.Sum([]byte(user))
	return int(binary.BigEndian.Uint16(sum[:2])) % userBuckets
}

// ticket reads the seven values an admission script answers per user.
func ticket(a couponq.Admission, res []any) (couponq.Ticket, error) {
	if len(res) != 7 {
		return couponq.Ticket{}, fmt.Errorf("redisq: admit: unexpected reply %v", res)
	}
	switch toInt(res[0]) {
	case 2:
		return couponq.Ticket{}, fmt.Errorf("%w: %s", couponq.ErrSoldOut, a.Campaign)
	case 3:
		return couponq.Ticket{}, fmt.Errorf("%w: %s holds %d waiting", couponq.ErrLineFull, a.Campaign, toInt(res[2]))
	}
	return couponq.Ticket{
		Campaign: a.Campaign, User: a.User, Entry: toInt(res[1]), Position: toInt(res[2]),
		State: couponq.State(toStr(res[3])), Repeat: toInt(res[0]) == 1, Claimed: toInt(res[6]),
	}, nil
}

// Status implements couponq.StatusReader.
//
// It is asked of any ID (the node reads a retired campaign's kept outcomes
// through it), so it remembers a campaign's key names only once the
// campaign has an entry for the user: an ID with none costs nothing after
// the call.
func (q *Queue) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	k, cached := q.lookKeys(campaign)
	keys := []string{k.Line, k.Held, k.Done, k.SoldOut, k.Flight, k.Issued}
	var res []any
	var err error
	if q.statuses != nil {
		res, err = q.statuses.status(ctx, campaign, user, keys)
	} else {
		res, err = statusScript.Run(ctx, q.rdb, keys, user, userBucket(user)).Slice()
	}
	if errors.Is(err, redis.Nil) {
		return couponq.Status{}, fmt.Errorf("%w: %s/%s", couponq.ErrNotFound, campaign, user)
	}
	if err != nil {
		return couponq.Status{}, fmt.Errorf("redisq: status: %w", err)
	}
	if len(res) != 6 {
		return couponq.Status{}, fmt.Errorf("redisq: status: unexpected reply %v", res)
	}
	if !cached {
		q.remember(campaign, k)
	}
	return couponq.Status{
		Campaign: campaign, User: user, State: couponq.State(toStr(res[0])), Entry: toInt(res[1]),
		Position: toInt(res[2]), Reason: toStr(res[3]), IssuanceID: toStr(res[4]),
		Claimed: toInt(res[5]),
	}, nil
}

// Lease implements couponq.Leaser. It returns at most Config.MaxRecover
// expired leases to the line per call.
func (q *Queue) Lease(ctx context.Context, campaign string, n int, ttl time.Duration) ([]couponq.Entry, error) {
	if n < 0 || ttl <= 0 {
		return nil, fmt.Errorf("%w: lease of %d entries for %s", couponq.ErrInvalidConfig, n, ttl)
	}
	// Lua numbers are doubles, and Redis passes one to a command with 17
	// significant digits: a count of 10^17 or more would reach ZPOPMIN in
	// exponent form, and be refused. No line holds 2^31 entries.
	n = min(n, math.MaxInt32)
	k := q.keys(campaign)
	res, err := leaseScript.Run(ctx, q.rdb, []string{k.Line, k.Flight, k.Held, k.Done, k.SoldOut, k.Clock, k.Trace, k.Seq},
		n, ttl.Milliseconds(), q.maxRecover).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisq: lease: %w", err)
	}
	out := make([]couponq.Entry, 0, len(res)/5)
	for i := 0; i+4 < len(res); i += 5 {
		e := couponq.Entry{Campaign: campaign, User: toStr(res[i]), Number: toInt(res[i+1]), Trace: toStr(res[i+4])}
		if ms := toInt(res[i+2]); ms > 0 {
			e.AdmittedAt = time.UnixMilli(ms).Add(time.Duration(toInt(res[i+3])) * time.Microsecond)
		}
		out = append(out, e)
	}
	return out, nil
}

// Ack implements couponq.Leaser.
func (q *Queue) Ack(ctx context.Context, campaign string, entries []couponq.Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ack ttl %s", couponq.ErrInvalidConfig, ttl)
	}
	if len(entries) == 0 {
		return nil
	}
	k := q.keys(campaign)
	args := append([]any{ttl.Milliseconds()}, pairs(entries)...)
	if err := ackScript.Run(ctx, q.rdb, []string{k.Line, k.Flight, k.Held}, args...).Err(); err != nil {
		return fmt.Errorf("redisq: ack: %w", err)
	}
	return nil
}

// Release implements couponq.Leaser.
func (q *Queue) Release(ctx context.Context, campaign string, entries []couponq.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	k := q.keys(campaign)
	if err := releaseScript.Run(ctx, q.rdb, []string{k.Line, k.Flight, k.Held}, pairs(entries)...).Err(); err != nil {
		return fmt.Errorf("redisq: release: %w", err)
	}
	return nil
}

// Record implements couponq.Recorder.
func (q *Queue) Record(ctx context.Context, campaign string, results ...couponq.Result) error {
	if len(results) == 0 {
		return nil
	}
	args := make([]any, 0, 5*len(results))
	for _, r := range results {
		if r.State != couponq.StateIssued && r.State != couponq.StateRejected {
			return fmt.Errorf("redisq: record of entry %d with non-terminal state %q", r.Entry.Number, r.State)
		}
		args = append(args, r.Entry.User, r.Entry.Number, string(r.State), string(r.Reason), r.IssuanceID)
	}
	k := q.keys(campaign)
	if err := recordScript.Run(ctx, q.rdb, []string{k.Line, k.Flight, k.Held, k.Done, k.Issued, k.Trace}, args...).Err(); err != nil {
		return fmt.Errorf("redisq: record: %w", err)
	}
	return nil
}

// IssuedCount implements couponq.IssuedCounter: how many distinct entries of
// the campaign Record has seen as issued.
func (q *Queue) IssuedCount(ctx context.Context, campaign string) (int64, error) {
	k, _ := q.lookKeys(campaign)
	n, err := q.rdb.Get(ctx, k.Issued).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisq: issued count: %w", err)
	}
	return n, nil
}

// MarkSoldOut implements couponq.Recorder.
func (q *Queue) MarkSoldOut(ctx context.Context, campaign string) error {
	k, _ := q.lookKeys(campaign)
	if err := q.rdb.Set(ctx, k.SoldOut, 1, 0).Err(); err != nil {
		return fmt.Errorf("redisq: mark sold out: %w", err)
	}
	return nil
}

func pairs(entries []couponq.Entry) []any {
	args := make([]any, 0, 2*len(entries))
	for _, e := range entries {
		args = append(args, e.User, e.Number)
	}
	return args
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}
