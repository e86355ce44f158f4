package pgstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/couponq/couponq/couponq"
)

// DB is what the Store needs of the database: *pgxpool.Pool satisfies it,
// and so does *pgx.Conn for a single goroutine. The Store never closes it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DefaultMaxRetries is Config.MaxRetries when it is zero.
const DefaultMaxRetries = 10

// Backoff between retries: full jitter over an interval that starts at
// retryBase and doubles per retry up to retryCap. Most retries follow a
// conflict with a call that has already committed, so the first waits are
// kept well under a millisecond-scale round trip's worth of harm.
const (
	retryBase = time.Millisecond
	retryCap  = 100 * time.Millisecond
)

// Config configures a Store. Zero values take the defaults documented on
// each field.
type Config struct {
	// Pool is the host's connection pool, normally a *pgxpool.Pool, on a
	// database where Migration has been applied. Required. The Store never
	// closes it.
	Pool DB
	// Logger receives a debug record per retried call. Nil discards.
	Logger *slog.Logger
	// MaxRetries bounds how often one call is retried after a
	// serialization failure or deadlock (SQLSTATE 40001, 40P01): after a
	// concurrent call decided one of its keys or users first, or took the
	// stock it was about to take. Zero means DefaultMaxRetries; negative is
	// invalid.
	MaxRetries int
}

// Store is a couponq.BatchStore on PostgreSQL, safe for concurrent use. See
// the package documentation for the schema and how a call is decided.
type Store struct {
	db         DB
	log        *slog.Logger
	maxRetries int
}

var (
	_ couponq.BatchStore    = (*Store)(nil)
	_ couponq.IssuedCounter = (*Store)(nil)
)

// New validates cfg and returns a Store. It does not touch the database.
func New(cfg Config) (*Store, error) {
	if cfg.Pool == nil {
		return nil, fmt.Errorf("%w: pgstore: Pool is required", couponq.ErrInvalidConfig)
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("%w: pgstore: MaxRetries must be >= 0, got %d", couponq.ErrInvalidConfig, cfg.MaxRetries)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{db: cfg.Pool, log: cfg.Logger, maxRetries: cfg.MaxRetries}, nil
}

// Ping reports whether the database answers: the pool's own Ping when the
// DB has one (*pgxpool.Pool and *pgx.Conn do), else SELECT 1. A node calls
// it for its readiness (the check named "store"), so a host's readiness
// probe turns false while PostgreSQL is down and true once it is back.
func (s *Store) Ping(ctx context.Context) error {
	if p, ok := s.db.(interface{ Ping(context.Context) error }); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("pgstore: ping: %w", err)
		}
		return nil
	}
	var one int
	if err := s.db.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Issue implements couponq.Store: a one-request IssueBatch.
func (s *Store) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Issuance{}, fmt.Errorf("pgstore: issue: %w", err)
	}
	if err := check(r); err != nil {
		return couponq.Issuance{}, err
	}
	out, err := s.decide(ctx, []couponq.IssueRequest{r})
	if err != nil {
		return couponq.Issuance{}, err
	}
	return out[0], nil
}

// IssueBatch implements couponq.BatchStore. The batch is decided by one read
// and, when anything is issued, one write statement: one transaction,
// whatever campaigns it names. The one exception is a batch whose requests
// for one campaign carry different Stock values (the host changed a
// campaign's stock while requests were in flight): it is cut where the Stock
// changes and the parts are decided one after the other.
func (s *Store) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: issue batch: %w", err)
	}
	for i, r := range rs {
		if err := check(r); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	out := make([]couponq.Issuance, 0, len(rs))
	for len(rs) > 0 {
		n := uniformStock(rs)
		part, err := s.decide(ctx, rs[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
		rs = rs[n:]
	}
	return out, nil
}

// check is memory.Store's validation, plus what PostgreSQL text refuses.
func check(r couponq.IssueRequest) error {
	if r.Campaign == "" || r.User == "" || r.Key == "" || r.Stock <= 0 {
		return fmt.Errorf("pgstore: issue request needs campaign, user, key and stock > 0: %+v", r)
	}
	for _, f := range [...]string{r.Campaign, r.User, r.Key} {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return fmt.Errorf("pgstore: issue request fields must be UTF-8 without NUL bytes: %+v", r)
		}
	}
	return nil
}

// uniformStock returns the length of the longest prefix of rs in which all
// requests of a campaign carry the same Stock. decideOnce grants a campaign's
// stock in one step against one Stock value; memory.Store compares each
// request with its own.
func uniformStock(rs []couponq.IssueRequest) int {
	stock := map[string]int64{}
	for i, r := range rs {
		if st, ok := stock[r.Campaign]; ok && st != r.Stock {
			return i
		}
		stock[r.Campaign] = r.Stock
	}
	return len(rs)
}

// decide runs decideOnce, retrying serialization failures and deadlocks with
// jittered backoff. Each attempt reads afresh, so a retry sees whatever the
// winning call committed.
func (s *Store) decide(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	for attempt := 0; ; attempt++ {
		out, err := s.decideOnce(ctx, rs)
		if err == nil {
			return out, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("pgstore: issue: %w", err)
		}
		if attempt >= s.maxRetries {
			return nil, fmt.Errorf("pgstore: issue: giving up after %d attempts: %w", attempt+1, err)
		}
		wait := rand.N(min(retryCap, retryBase<<attempt)) // full jitter; the shift stops growing at the cap
		s.log.DebugContext(ctx, "pgstore: retrying issue", "attempt", attempt+1, "requests", len(rs), "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("pgstore: issue: %w (retrying after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// retryable reports a serialization failure (including the one the issuing
// statement raises on itself) or a deadlock: the statement was rolled back
// whole and the call can run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// readSQL returns, from one snapshot (one statement): the issuance of each
// (campaign, key) asked that exists, the holdings of each (campaign, user)
// that holds any, and the issued count of each campaign that has a counter.
// It locks nothing.
const readSQL = `
SELECT 'k', i.campaign, i.idem_key, i.id, 0::bigint
FROM unnest($1::text[], $2::text[]) AS q(campaign, idem_key)
JOIN couponq_issuances i ON i.campaign = q.campaign AND i.idem_key = q.idem_key
UNION ALL
SELECT 'u', i.campaign, i.user_id, '', count(*)
FROM unnest($3::text[], $4::text[]) AS q(campaign, user_id)
JOIN couponq_issuances i ON i.campaign = q.campaign AND i.user_id = q.user_id
GROUP BY i.campaign, i.user_id
UNION ALL
SELECT 'c', c.campaign, '', '', c.issued
FROM couponq_counters c
WHERE c.campaign = ANY($5::text[])`

// writeSQL issues what the read decided, all or nothing, as one statement
// (so one transaction, with no round trip while it holds a lock):
//
//   - grants takes want units from each campaign's counter, in campaign
//     order (so two batches naming the same campaigns never deadlock). The
//     upsert creates a counter at first use; on an existing one it waits for
//     the row lock and, under READ COMMITTED, re-checks its condition against
//     the newest committed count. It takes all the units asked or none.
//   - ins inserts the candidates. Joining them to grants makes each row
//     wait for its campaign's grant, so every insert of a campaign happens
//     under the campaign's counter lock: the rows it can conflict with are
//     committed ones, and it never waits on another call's insert. ON
//     CONFLICT DO NOTHING skips a key or user slot a concurrent call took
//     after the read.
//   - couponq_require fails the statement, undoing the grants, unless every
//     candidate was inserted; the caller retries with a fresh read.
//
// The aggregate makes the result one row even when no grant went through,
// so the check always runs.
const writeSQL = `
WITH want AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(campaign, want, stock)
), grants AS (
    INSERT INTO couponq_counters AS c (campaign, issued, stock)
    SELECT campaign, want, stock FROM want ORDER BY campaign
    ON CONFLICT (campaign) DO UPDATE
        SET issued = c.issued + excluded.issued, stock = excluded.stock
        WHERE c.issued + excluded.issued <= excluded.stock
    RETURNING c.campaign, c.issued
), ins AS (
    INSERT INTO couponq_issuances (campaign, user_id, n, idem_key, id)
    SELECT t.campaign, t.user_id, t.n, t.idem_key, t.id
    FROM unnest($4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) AS t(campaign, user_id, n, idem_key, id)
    JOIN grants g ON g.campaign = t.campaign
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT couponq_require((SELECT count(*) FROM ins) = $9::bigint,
           'couponq/pgstore: a concurrent call took a key, user slot or the stock this call was issuing'),
       array_agg(campaign), array_agg(issued)
FROM grants`

// pair names a key or user within a campaign.
type pair struct{ campaign, name string }

// snapshot is what readSQL returned.
type snapshot struct {
	ids    map[pair]string  // (campaign, key) -> issuance ID
	held   map[pair]int     // (campaign, user) -> units held
	issued map[string]int64 // campaign -> units issued; absent means 0
}

// decideOnce decides rs in one attempt: read, decide in Go exactly as
// memory.Store would from that snapshot, write the new issuances. The write
// fails with 40001 if the database moved under the decision.
func (s *Store) decideOnce(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	snap, err := s.read(ctx, rs)
	if err != nil {
		return nil, err
	}
	plan, cands, err := run(rs, snap, snap.issued, func(int) (string, bool) { return newID(), true })
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return plan, nil // nothing to issue: the snapshot is the answer
	}

	// One grant per campaign, sorted; want[c] is how many it asks for.
	want := map[string]int64{}
	stock := map[string]int64{}
	for _, c := range cands {
		want[c.campaign]++
		stock[c.campaign] = rs[c.req].Stock
	}
	campaigns := make([]string, 0, len(want))
	for c := range want {
		campaigns = append(campaigns, c)
	}
	slices.Sort(campaigns)
	wants := make([]int64, len(campaigns))
	stocks := make([]int64, len(campaigns))
	for i, c := range campaigns {
		wants[i], stocks[i] = want[c], stock[c]
	}
	var (
		cc, users, keys, ids = make([]string, len(cands)), make([]string, len(cands)), make([]string, len(cands)), make([]string, len(cands))
		ns                   = make([]int64, len(cands))
	)
	for i, c := range cands {
		cc[i], users[i], ns[i], keys[i], ids[i] = c.campaign, rs[c.req].User, c.n, rs[c.req].Key, c.id
	}

	var (
		granted   []string
		issuedNow []int64
	)
	err = s.db.QueryRow(ctx, writeSQL, campaigns, wants, stocks, cc, users, ns, keys, ids, int64(len(cands))).
		Scan(nil, &granted, &issuedNow) // nil: couponq_require's true
	if err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if len(granted) != len(campaigns) {
		// couponq_require guarantees this; a mismatch means the schema is
		// not the one this code was written for.
		return nil, fmt.Errorf("write: %d of %d campaigns granted", len(granted), len(campaigns))
	}

	// Every candidate was issued. Outcomes are the plan's; only the SoldOut
	// flags can differ, since other calls may have taken stock since the
	// read: replay from the count the grants started at.
	base := make(map[string]int64, len(snap.issued)+len(granted))
	for c, n := range snap.issued {
		base[c] = n
	}
	for i, c := range granted {
		base[c] = issuedNow[i] - want[c]
	}
	byReq := make(map[int]candidate, len(cands))
	for _, c := range cands {
		byReq[c.req] = c
	}
	out, replayed, err := run(rs, snap, base, func(i int) (string, bool) {
		c, ok := byReq[i]
		return c.id, ok
	})
	if err != nil {
		return nil, err
	}
	if !slices.Equal(replayed, cands) {
		return nil, fmt.Errorf("internal error: the replay issued %d requests, the plan %d", len(replayed), len(cands))
	}
	return out, nil
}

// read runs readSQL for the keys, users and campaigns of rs.
func (s *Store) read(ctx context.Context, rs []couponq.IssueRequest) (*snapshot, error) {
	var keyC, keyN, userC, userN, campaigns []string
	seenKey, seenUser, seenCampaign := map[pair]bool{}, map[pair]bool{}, map[string]bool{}
	for _, r := range rs {
		if k := (pair{r.Campaign, r.Key}); !seenKey[k] {
			seenKey[k] = true
			keyC, keyN = append(keyC, r.Campaign), append(keyN, r.Key)
		}
		if u := (pair{r.Campaign, r.User}); !seenUser[u] {
			seenUser[u] = true
			userC, userN = append(userC, r.Campaign), append(userN, r.User)
		}
		if !seenCampaign[r.Campaign] {
			seenCampaign[r.Campaign] = true
			campaigns = append(campaigns, r.Campaign)
		}
	}
	rows, err := s.db.Query(ctx, readSQL, keyC, keyN, userC, userN, campaigns)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	snap := &snapshot{ids: map[pair]string{}, held: map[pair]int{}, issued: map[string]int64{}}
	var (
		kind, campaign, name, id string
		n                        int64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &campaign, &name, &id, &n}, func() error {
		switch kind {
		case "k":
			snap.ids[pair{campaign, name}] = id
		case "u":
			snap.held[pair{campaign, name}] = int(n)
		case "c":
			snap.issued[campaign] = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return snap, nil
}

// candidate is a request the decision issues.
type candidate struct {
	req      int    // index in the batch
	campaign string //
	n        int64  // the user's slot: which of their issuances this is
	id       string // the issuance ID
}

// run decides rs in order exactly as memory.Store.issue does, starting from
// snap with base[c] units of campaign c issued, and returns the outcomes and
// the requests it issued, in order. idFor names request i's issuance; it
// reports false if request i must not be issued (the replay only issues
// what the plan did).
func run(rs []couponq.IssueRequest, snap *snapshot, base map[string]int64, idFor func(i int) (string, bool)) ([]couponq.Issuance, []candidate, error) {
	out := make([]couponq.Issuance, len(rs))
	var cands []candidate
	issued := map[string]int64{}
	ids := map[pair]string{}
	held := map[pair]int{}
	for i, r := range rs {
		k, u := pair{r.Campaign, r.Key}, pair{r.Campaign, r.User}
		n, ok := issued[r.Campaign]
		if !ok {
			n = base[r.Campaign]
		}
		id, seen := ids[k]
		if !seen {
			id, seen = snap.ids[k]
		}
		h, ok := held[u]
		if !ok {
			h = snap.held[u]
		}
		switch {
		case seen:
			out[i] = couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: n >= r.Stock}
			continue
		case h >= max(r.PerUserLimit, 1):
			out[i] = couponq.Issuance{Outcome: couponq.Duplicate, SoldOut: n >= r.Stock}
			continue
		case n >= r.Stock:
			out[i] = couponq.Issuance{Outcome: couponq.SoldOut, SoldOut: true}
			continue
		}
		id, ok = idFor(i)
		if !ok {
			return nil, nil, fmt.Errorf("internal error: the replay issues request %d, the plan did not", i)
		}
		n++
		issued[r.Campaign], held[u], ids[k] = n, h+1, id
		cands = append(cands, candidate{req: i, campaign: r.Campaign, n: int64(h + 1), id: id})
		out[i] = couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: n >= r.Stock}
	}
	return out, cands, nil
}

// IssuedCount implements couponq.IssuedCounter: how many units of the
// campaign were issued, the counter's one row (0 without one). A node's
// scheduler reads it for the exact cutoff while a campaign's last units
// are decided.
func (s *Store) IssuedCount(ctx context.Context, campaign string) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT issued FROM couponq_counters WHERE campaign = $1`, campaign).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: issued count: %w", err)
	}
	return n, nil
}

// Holders returns, per user, how many units of the campaign the user holds.
func (s *Store) Holders(ctx context.Context, campaign string) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT user_id, count(*) FROM couponq_issuances WHERE campaign = $1 GROUP BY user_id`, campaign)
	if err != nil {
		return nil, fmt.Errorf("pgstore: holders: %w", err)
	}
	out := map[string]int{}
	var (
		user string
		n    int
	)
	if _, err := pgx.ForEachRow(rows, []any{&user, &n}, func() error { out[user] = n; return nil }); err != nil {
		return nil, fmt.Errorf("pgstore: holders: %w", err)
	}
	return out, nil
}

// newID returns 96 random bits in hex, like memory.Store's IDs.
func newID() string {
	var b [12]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
