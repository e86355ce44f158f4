package redisline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

var _ couponq.Agenda = (*Queue)(nil)

// AgendaKey returns the key of the agenda under prefix: prefix + ":agenda",
// a sorted set of campaign IDs scored by the time (unix ms) each woke. It is
// one key for every campaign, outside their slots: only separate commands
// write it, never a campaign's script, so nothing crosses slots on Redis
// Cluster.
func AgendaKey(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ":agenda"
}

// Wake implements couponq.Agenda with one ZADD NX: an awake campaign keeps
// the time it woke. A campaign that was not awake is also announced on the
// agenda's channel (PUBLISH to AgendaKey), which WatchWakes listens to.
func (q *Queue) Wake(ctx context.Context, campaign string) error {
	if err := couponq.ValidateID(campaign); err != nil {
		return err
	}
	if err := q.wake(ctx, campaign); err != nil {
		return fmt.Errorf("redisq: wake %s: %w", campaign, err)
	}
	return nil
}

func (q *Queue) wake(ctx context.Context, campaigns ...string) error {
	at := float64(time.Now().UnixMilli())
	zs := make([]redis.Z, len(campaigns))
	for i, c := range campaigns {
		zs[i] = redis.Z{Score: at, Member: c}
	}
	added, err := q.rdb.ZAddNX(ctx, AgendaKey(q.prefix), zs...).Result()
	if err != nil || added == 0 {
		return err
	}
	// The campaign is on the agenda, which the leader reads at its next
	// poll in any case: a lost announcement only costs that wait.
	_ = q.rdb.Publish(ctx, AgendaKey(q.prefix), "wake").Err()
	return nil
}

// wakeHealthCheck is how often WatchWakes's idle connection is checked.
const wakeHealthCheck = 30 * time.Second

// WatchWakes returns a channel that receives a signal (several wakes may
// share one) whenever Wake, from any process, puts a campaign on the
// agenda that was not on it, until ctx is done; then it is closed. It
// subscribes to the agenda's channel on one connection of its own (no
// command while nothing wakes). Announcements are Redis Pub/Sub's: lost
// while the connection is down, which the reader's periodic Awake covers.
func (q *Queue) WatchWakes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := q.rdb.Subscribe(ctx, AgendaKey(q.prefix))
	go func() {
		defer close(out)
		defer ps.Close()
		// A PING every 30 s checks the connection (go-redis's default, 3 s,
		// would triple an idle leader's commands); a connection found dead
		// is dialled again.
		msgs := ps.Channel(redis.WithChannelHealthCheckInterval(wakeHealthCheck))
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default: // a signal is pending already
				}
			}
		}
	}()
	return out
}

// Awake implements couponq.Agenda with one ZRANGE: every campaign on the
// agenda, longest awake first.
func (q *Queue) Awake(ctx context.Context) ([]string, error) {
	ids, err := q.rdb.ZRange(ctx, AgendaKey(q.prefix), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisq: awake: %w", err)
	}
	return ids, nil
}

// Rest implements couponq.Agenda. It takes the campaign off the agenda
// first (ZREM), then checks on the campaign's own slot that its line and
// flight are both empty (one EXISTS of the two keys, atomic); if not, it
// puts the campaign back (ZADD NX) and reports false. Because admission
// wakes the campaign after its script wrote the entry, an entry admitted at
// any point during Rest is either seen by the check or followed by a Wake.
// Once begun, a rest runs to its end even if ctx is cancelled, so a
// stopping caller never leaves a campaign with entries off the agenda. Two
// to three commands.
func (q *Queue) Rest(ctx context.Context, campaign string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := q.rdb.ZRem(ctx, AgendaKey(q.prefix), campaign).Err(); err != nil {
		// It may have been removed all the same: put it back.
		if werr := q.wake(ctx, campaign); werr != nil {
			err = errors.Join(err, werr)
		}
		return false, fmt.Errorf("redisq: rest %s: %w", campaign, err)
	}
	k, _ := q.lookKeys(campaign)
	n, err := q.rdb.Exists(ctx, k.Line, k.Flight).Result()
	if err == nil && n == 0 {
		return true, nil
	}
	// Entries, or no answer: it stays awake.
	if werr := q.wake(ctx, campaign); werr != nil {
		return false, fmt.Errorf("redisq: rest %s: putting it back: %w", campaign, errors.Join(err, werr))
	}
	if err != nil {
		return false, fmt.Errorf("redisq: rest %s: %w", campaign, err)
	}
	return false, nil
}

// sweepPage is how many keys one SCAN call looks at.
const sweepPage = 1000

// Sweep wakes every campaign under the Queue's prefix that has entries in
// line or in flight, and reports how many there are (awake already or
// woken now). It needs no list of campaigns: the line's count is deleted
// when nobody waits and Redis deletes the empty flight set, so a campaign
// has a line or flight key exactly when it has entries there, and SCAN (on
// every master of a Cluster) finds those keys (the line's buckets, q: and
// u:, do not match). It costs
// one SCAN per 1,000 keys in the database (all of them, not only
// couponq's) and one ZADD per 1,000 campaigns found; campaigns that never
// had anyone in line have no keys at all. The Scheduler calls it when it
// gains leadership (scheduler.Sweeper), which repairs an agenda that lost a
// wake: a process that died between its admission and its wake, a leader
// that died in the middle of a Rest.
func (q *Queue) Sweep(ctx context.Context) (int, error) {
	pattern := globEscape(q.prefix) + ":{*}:[lf]*"
	var mu sync.Mutex
	found := map[string]struct{}{}
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, sweepPage).Iterator()
		for iter.Next(ctx) {
			if id, ok := q.busyCampaign(iter.Val()); ok {
				mu.Lock()
				found[id] = struct{}{}
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	var err error
	switch c := q.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Ring:
		err = c.ForEachShard(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		return 0, fmt.Errorf("redisq: sweep: unsupported client %T", q.rdb)
	}
	if err != nil {
		return 0, fmt.Errorf("redisq: sweep: %w", err)
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		n := min(len(ids), sweepPage)
		if err := q.wake(ctx, ids[:n]...); err != nil {
			return 0, fmt.Errorf("redisq: sweep: wake: %w", err)
		}
		ids = ids[n:]
	}
	return len(found), nil
}

// busyCampaign reads the campaign ID out of a line or flight key of this
// Queue's prefix ("prefix:{campaign}:line"). IDs never contain braces.
func (q *Queue) busyCampaign(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, q.prefix+":{")
	if !ok {
		return "", false
	}
	id, kind, ok := strings.Cut(rest, "}:")
	if !ok || (kind != "line" && kind != "flight") || couponq.ValidateID(id) != nil {
		return "", false
	}
	return id, true
}

// globEscape quotes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
