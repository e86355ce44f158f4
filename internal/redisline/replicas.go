package redisline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

// Replica-acknowledged admission (Config.ReplicaAcks).
//
// Redis replicates asynchronously: a master that is killed before its
// replica has read an admission's write loses it in a failover, and the
// promoted replica hands the lost entry numbers out again. With
// Config.ReplicaAcks n > 0, every admission script call (one user, or a
// coalesced batch) is sent in one pipeline, on one connection to the
// campaign's master, with two commands after it:
//
//	EVALSHA <admission script> ...    (EVAL if the master does not have it)
//	SET prefix:{campaign}:acked 1 PX 60000
//	WAIT n timeout
//
// WAIT cannot run inside a script; it blocks the connection (not Redis)
// until n replicas have acknowledged every write the connection made, or the
// timeout passes, and answers how many did. The SET is there because a
// script that writes nothing (a repeat answer) moves the connection's
// replication offset nowhere, so WAIT would pass at once on a connection
// whose last write is older than the user's entry (written, perhaps, by the
// very admission whose WAIT fell short, on another connection); the SET
// always writes, so WAIT covers everything the master wrote before it. Its
// key, in the campaign's slot, expires a minute after the campaign's last
// admission.
//
// When fewer than n replicas acknowledge in time, no caller of that call
// hears a ticket: each hears an error wrapping couponq.ErrUnavailable and
// ErrNotReplicated (HTTP 503 "unavailable", with Retry-After), whatever the
// script answered, sold out included. The entry may still be in the line
// (the master wrote it; it may yet reach a replica, or be lost in a
// failover): a caller who tries again hears the repeat answer with the same
// entry number once a replica has acknowledged it, or, after a failover
// that lost it, a fresh entry, so nothing is admitted twice.
//
// On a Cluster (a *redis.ClusterClient), the pipeline goes to the master
// that owns the campaign's slot as the client last learned it; an error
// there (a MOVED after a failover, a master gone) asks the client to reload
// the slots, and the caller hears ErrUnavailable.

// ErrNotReplicated reports an admission that fewer replicas acknowledged
// than Config.ReplicaAcks asks, within Config.ReplicaTimeout. It comes
// wrapped with couponq.ErrUnavailable.
var ErrNotReplicated = errors.New("redisq: admission not acknowledged by enough replicas")

// DefaultReplicaTimeout is Config.ReplicaTimeout's default.
const DefaultReplicaTimeout = 500 * time.Millisecond

// ackedTTL is how long the key the SET writes lives after the campaign's
// last replica-acknowledged admission.
const ackedTTL = time.Minute

// replicaConfig validates and defaults cfg's replica fields.
func replicaConfig(cfg *Config) error {
	if cfg.ReplicaAcks < 0 || cfg.ReplicaTimeout < 0 {
		return fmt.Errorf("%w: redisq: ReplicaAcks and ReplicaTimeout must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.ReplicaAcks > 0 && cfg.ReplicaTimeout == 0 {
		cfg.ReplicaTimeout = DefaultReplicaTimeout
	}
	if cfg.ReplicaAcks > 0 && cfg.ReplicaTimeout < time.Millisecond {
		return fmt.Errorf("%w: redisq: ReplicaTimeout must be at least 1ms (WAIT counts milliseconds)", couponq.ErrInvalidConfig)
	}
	return nil
}

// runAdmit runs an admission script (admit.lua or admit_many.lua) on the
// campaign whose keys k are and returns its reply; with Config.ReplicaAcks
// set, only once that many replicas acknowledged it (else an error wrapping
// ErrNotReplicated).
func (q *Queue) runAdmit(ctx context.Context, script *redis.Script, k Keys, args ...any) ([]any, error) {
	if q.replicaAcks == 0 {
		return script.Run(ctx, q.rdb, k.AdmitKeys(), args...).Slice()
	}
	return q.runAdmitAcked(ctx, script, k, args)
}

func (q *Queue) runAdmitAcked(ctx context.Context, script *redis.Script, k Keys, args []any) ([]any, error) {
	var pipe redis.Pipeliner
	cluster, _ := q.rdb.(*redis.ClusterClient)
	if cluster != nil {
		master, err := cluster.MasterForKey(ctx, k.Seq)
		if err != nil {
			cluster.ReloadState(ctx)
			return nil, err
		}
		pipe = master.Pipeline()
	} else {
		pipe = q.rdb.Pipeline() // a single node or Sentinel's master: one connection
	}
	keys := k.AdmitKeys()
	acked := strings.TrimSuffix(k.Seq, "seq") + "acked"
	run := func(eval func() *redis.Cmd) (*redis.Cmd, *redis.Cmd, error) {
		res := eval()
		pipe.Set(ctx, acked, 1, ackedTTL)
		wait := pipe.Do(ctx, "wait", q.replicaAcks, q.replicaTimeout.Milliseconds())
		_, err := pipe.Exec(ctx)
		return res, wait, err
	}
	res, wait, err := run(func() *redis.Cmd { return script.EvalSha(ctx, pipe, keys, args...) })
	if err != nil && redis.HasErrorPrefix(res.Err(), "NOSCRIPT") {
		res, wait, err = run(func() *redis.Cmd { return script.Eval(ctx, pipe, keys, args...) })
	}
	if err := res.Err(); err != nil {
		if cluster != nil && !isScriptError(err) {
			cluster.ReloadState(ctx)
		}
		return nil, err
	}
	if err != nil {
		if cluster != nil {
			cluster.ReloadState(ctx)
		}
		return nil, err
	}
	if got, err := wait.Int64(); err != nil || got < int64(q.replicaAcks) {
		return nil, fmt.Errorf("%w: %w: %d of %d replicas within %s", couponq.ErrUnavailable, ErrNotReplicated,
			got, q.replicaAcks, q.replicaTimeout)
	}
	return res.Slice()
}

// isScriptError reports an error the script raised (its own reply), not
// one of the connection or of the cluster's routing.
func isScriptError(err error) bool {
	return redis.HasErrorPrefix(err, "ERR") || redis.HasErrorPrefix(err, "WRONGTYPE")
}
