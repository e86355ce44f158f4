// Package redisstore is a couponq.Store on Redis for the project's own
// cross-process tests (a worker killed and restarted needs a Store outside
// its process). It passes storetest; a host's Store of record belongs in its
// own database.
package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

//go:embed issue.lua
var issueLua string

var issueScript = redis.NewScript(issueLua)

// Store issues atomically and idempotently with one Lua script.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Store under prefix.
func New(rdb redis.UniversalClient, prefix string) *Store { return &Store{rdb: rdb, prefix: prefix} }

func (s *Store) keys(campaign string) []string {
	base := s.prefix + ":{" + campaign + "}:store:"
	return []string{base + "issued", base + "users", base + "keys"}
}

// Issue implements couponq.Store.
func (s *Store) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	res, err := issueScript.Run(ctx, s.rdb, s.keys(r.Campaign), r.User, r.Key, r.Stock, max(r.PerUserLimit, 1), hex.EncodeToString(b[:])).Slice()
	if err != nil {
		return couponq.Issuance{}, fmt.Errorf("redisstore: %w", err)
	}
	out := couponq.Issuance{Outcome: couponq.Outcome(res[0].(int64)), SoldOut: res[2].(int64) == 1}
	out.ID, _ = res[1].(string)
	return out, nil
}

// Issued returns the campaign's issued count.
func (s *Store) Issued(ctx context.Context, campaign string) (int64, error) {
	v, err := s.rdb.Get(ctx, s.keys(campaign)[0]).Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// Holders returns how many units each user holds.
func (s *Store) Holders(ctx context.Context, campaign string) (map[string]int, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys(campaign)[1]).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(m))
	for u, v := range m {
		out[u], _ = strconv.Atoi(v)
	}
	return out, nil
}
