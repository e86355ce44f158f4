package redisline

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// statusBatcher pipelines concurrent status reads of one campaign, as the
// coalescer does admissions: the first read to find none of the campaign's
// on its way goes out at once, alone; reads arriving meanwhile wait and go
// together as one pipeline of the status script (one round trip, and one
// socket read and write for Redis instead of one each), up to max at a
// time. A status read changes nothing, so a caller whose context ends just
// leaves; the pipeline's answer for it is dropped. It starts no
// goroutines of its own.
type statusBatcher struct {
	q *Queue
	g *groupCommit[*statusCall]
}

type statusCall struct {
	user string
	res  []any
	err  error
	done chan struct{}
}

func newStatusBatcher(q *Queue, max int) *statusBatcher {
	return &statusBatcher{q: q, g: newGroupCommit[*statusCall](max)}
}

// status runs the status script for user; keys are the campaign's.
func (b *statusBatcher) status(ctx context.Context, campaign, user string, keys []string) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	call, lead := b.g.leadOrQueue(campaign, func() *statusCall { return &statusCall{user: user, done: make(chan struct{})} })
	if lead {
		res, err := statusScript.Run(ctx, b.q.rdb, keys, user, userBucket(user)).Slice()
		b.g.drain(campaign, func(batch []*statusCall) { b.run(keys, batch) })
		return res, err
	}
	select {
	case <-call.done:
		return call.res, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends one pipeline; bounded by its own timeout, as it serves many
// callers.
func (b *statusBatcher) run(keys []string, batch []*statusCall) {
	defer func() {
		for _, call := range batch {
			close(call.done)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	pipe := b.q.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, call := range batch {
		cmds[i] = statusScript.EvalSha(ctx, pipe, keys, call.user, userBucket(call.user))
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, call := range batch {
		call.res, call.err = cmds[i].Slice()
		if call.err != nil && strings.HasPrefix(call.err.Error(), "NOSCRIPT") {
			// Redis lost its scripts (a restart, SCRIPT FLUSH): Run loads it.
			call.res, call.err = statusScript.Run(ctx, b.q.rdb, keys, call.user, userBucket(call.user)).Slice()
		}
	}
}
