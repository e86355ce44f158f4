package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

//go:embed issue.lua
var issueLua string

var issueScript = redis.NewScript(issueLua)

// DefaultPrefix is the key prefix used when Config.Prefix is empty; it is
// the Redis queue's too (the Store's keys carry a "store" segment).
const DefaultPrefix = "couponq"

// ErrNotDurable is returned by CheckDurability when the server's persistence
// settings can lose acknowledged issuances on a crash.
var ErrNotDurable = errors.New("couponq/redisstore: redis persistence can lose acknowledged issuances")

// Config configures a Store. Zero values take the defaults documented on
// each field.
type Config struct {
	// Client is the host's Redis client: a single node, Sentinel or Cluster
	// client. Required. The Store never closes it.
	Client redis.UniversalClient
	// Prefix starts every key. Empty means DefaultPrefix.
	Prefix string
}

// Store is a couponq.BatchStore on Redis: each call is one Lua script per
// campaign, atomic and idempotent by key.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	keys   sync.Map // campaign -> []string
}

var (
	_ couponq.BatchStore    = (*Store)(nil)
	_ couponq.IssuedCounter = (*Store)(nil)
)

// New validates cfg and returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: redisstore: Client is required", couponq.ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: redisstore: Prefix %q must not contain braces (they make the hash tag)", couponq.ErrInvalidConfig, cfg.Prefix)
	}
	return &Store{rdb: cfg.Client, prefix: cfg.Prefix}, nil
}

// Keys returns the campaign's keys, in the order the script takes them: the
// issued counter, the user -> count hash and the key -> issuance ID hash.
// All three share the campaign's hash tag.
func (s *Store) Keys(campaign string) []string {
	if k, ok := s.keys.Load(campaign); ok {
		return k.([]string)
	}
	base := s.prefix + ":{" + campaign + "}:store:"
	k := []string{base + "issued", base + "users", base + "keys"}
	s.keys.Store(campaign, k)
	return k
}

// Issue implements couponq.Store.
func (s *Store) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	out, err := s.IssueBatch(ctx, []couponq.IssueRequest{r})
	if err != nil {
		return couponq.Issuance{}, err
	}
	return out[0], nil
}

// IssueBatch implements couponq.BatchStore. Requests of one campaign are
// decided by one script call, so they are atomic together; a batch naming
// several campaigns makes one call per campaign, in order of first
// appearance.
func (s *Store) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var order []string
	groups := map[string][]int{}
	for i, r := range rs {
		if r.Campaign == "" || r.User == "" || r.Key == "" || r.Stock <= 0 {
			return nil, fmt.Errorf("redisstore: request %d needs campaign, user, key and stock > 0: %+v", i, r)
		}
		if _, ok := groups[r.Campaign]; !ok {
			order = append(order, r.Campaign)
		}
		groups[r.Campaign] = append(groups[r.Campaign], i)
	}
	out := make([]couponq.Issuance, len(rs))
	for _, c := range order {
		idx := groups[c]
		args := make([]any, 0, 5*len(idx))
		for _, i := range idx {
			r := rs[i]
			args = append(args, r.User, r.Key, max(r.PerUserLimit, 1), r.Stock, newID())
		}
		res, err := issueScript.Run(ctx, s.rdb, s.Keys(c), args...).Slice()
		if err != nil {
			return nil, fmt.Errorf("redisstore: issue %s: %w", c, err)
		}
		if len(res) != 3*len(idx) {
			return nil, fmt.Errorf("redisstore: issue %s: %d values for %d requests", c, len(res), len(idx))
		}
		for j, i := range idx {
			o, _ := res[3*j].(int64)
			id, _ := res[3*j+1].(string)
			so, _ := res[3*j+2].(int64)
			out[i] = couponq.Issuance{Outcome: couponq.Outcome(o), ID: id, SoldOut: so == 1}
		}
	}
	return out, nil
}

// IssuedCount implements couponq.IssuedCounter: the campaign's issued
// count (one GET). A node's scheduler reads it for the exact cutoff while
// a campaign's last units are decided.
func (s *Store) IssuedCount(ctx context.Context, campaign string) (int64, error) {
	n, err := s.rdb.Get(ctx, s.Keys(campaign)[0]).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: issued count: %w", err)
	}
	return n, nil
}

// Holders returns how many units each user holds.
func (s *Store) Holders(ctx context.Context, campaign string) (map[string]int, error) {
	m, err := s.rdb.HGetAll(ctx, s.Keys(campaign)[1]).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: holders: %w", err)
	}
	out := make(map[string]int, len(m))
	for u, v := range m {
		out[u], _ = strconv.Atoi(v)
	}
	return out, nil
}

// CheckDurability reads the server's persistence settings (CONFIG GET, which
// managed services may refuse) and returns an error wrapping ErrNotDurable
// unless appendonly is yes and appendfsync is always. On a Cluster client it
// checks every master.
func (s *Store) CheckDurability(ctx context.Context) error {
	check := func(ctx context.Context, c *redis.Client) error {
		m, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return fmt.Errorf("redisstore: config get: %w", err)
		}
		if m["appendonly"] != "yes" || m["appendfsync"] != "always" {
			return fmt.Errorf("%w: %s has appendonly=%q appendfsync=%q (want yes, always)",
				ErrNotDurable, c.Options().Addr, m["appendonly"], m["appendfsync"])
		}
		return nil
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, check)
	case *redis.Client:
		return check(ctx, c)
	}
	return fmt.Errorf("redisstore: CheckDurability supports *redis.Client and *redis.ClusterClient, not %T", s.rdb)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Ping reports whether Redis answers (PING), for a node's readiness.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
