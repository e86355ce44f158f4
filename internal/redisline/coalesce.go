package redisline

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

//go:embed lua/admit_many.lua
var admitManyLua string

var admitManyScript = redis.NewScript(lineLua + lineWriteLua + admitManyLua)

// coalescer groups concurrent admissions of one campaign into one script
// call (a groupCommit): the leader admits everything queued behind it, in
// arrival order, until the queue is empty; the others wait for their
// answer.
type coalescer struct {
	q *Queue
	g *groupCommit[*admitCall]
}

type admitCall struct {
	a    couponq.Admission
	t    couponq.Ticket
	err  error
	done chan struct{}
}

// batchTimeout bounds one script call made for coalesced callers, whose
// own contexts do not: once sent, an admission's outcome is awaited.
const batchTimeout = 5 * time.Second

func newCoalescer(q *Queue, max int) *coalescer {
	return &coalescer{q: q, g: newGroupCommit[*admitCall](max)}
}

func (c *coalescer) admit(ctx context.Context, a couponq.Admission) (couponq.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Ticket{}, err // a caller already gone writes nothing
	}
	call, lead := c.g.leadOrQueue(a.Campaign, func() *admitCall { return &admitCall{a: a, done: make(chan struct{})} })
	if lead {
		// Nothing of this campaign is on its way: this admission goes out
		// at once, alone, with the single-user script (no batch to build,
		// no wait); admissions arriving meanwhile queue up behind it and
		// go together when it is back.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
		t, err := c.q.admitOne(sctx, a)
		cancel()
		c.g.drain(a.Campaign, func(batch []*admitCall) { c.run(a.Campaign, batch) })
		return t, err
	}
	select {
	case <-call.done:
		return call.t, call.err
	case <-ctx.Done():
	}
	// The caller is gone. If its admission has not been sent, take it back:
	// nothing is written and the caller hears its context's error. If it
	// has, Redis may already have admitted it, so wait for the batch (its
	// own timeout bounds the wait) and report what happened.
	if c.g.withdraw(a.Campaign, call) {
		return couponq.Ticket{}, ctx.Err()
	}
	<-call.done
	return call.t, call.err
}

// run admits one batch; it serves many callers, so it is bounded by its own
// timeout rather than by any one caller's context.
func (c *coalescer) run(campaign string, batch []*admitCall) {
	defer func() {
		for _, call := range batch {
			close(call.done)
		}
	}()
	// Callers of one batch share one per-user limit, line cap and time;
	// group by limit and cap.
	limit, lineCap := max(batch[0].a.PerUserLimit, 1), max(batch[0].a.MaxWaiting, 0)
	args := []any{limit, time.Now().UnixMilli(), lineCap}
	var sent []*admitCall
	var rest []*admitCall
	for _, call := range batch {
		if max(call.a.PerUserLimit, 1) != limit || max(call.a.MaxWaiting, 0) != lineCap {
			rest = append(rest, call)
			continue
		}
		args = append(args, call.a.User, call.a.Trace, userBucket(call.a.User))
		sent = append(sent, call)
	}
	for _, call := range rest { // rare: different limits for one campaign at once (a campaign just changed)
		call.t, call.err = c.q.admitOne(context.Background(), call.a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	k := c.q.keys(campaign)
	res, err := c.q.runAdmit(ctx, admitManyScript, k, args...)
	if err == nil {
		err = manyTickets(sent, res)
	}
	if err != nil {
		for _, call := range sent {
			call.err = fmt.Errorf("redisq: admit: %w", err)
		}
	}
}

// manyTickets reads admit_many.lua's reply into each call's ticket: the
// claimed count, the entry counter and the count waiting before the call,
// one code character per user, then the extras of the codes that carry
// any, in order.
func manyTickets(sent []*admitCall, res []any) error {
	if len(res) < 4 {
		return fmt.Errorf("unexpected reply of %d values", len(res))
	}
	claimed, seq, waiting := toInt(res[0]), toInt(res[1]), toInt(res[2])
	codes, ok := res[3].(string)
	if !ok || len(codes) != len(sent) {
		return fmt.Errorf("unexpected reply: %d codes for %d users", len(codes), len(sent))
	}
	extras := res[4:]
	next := func(n int) ([]any, error) {
		if len(extras) < n {
			return nil, fmt.Errorf("unexpected reply: extras end early for %d users", len(sent))
		}
		x := extras[:n]
		extras = extras[n:]
		return x, nil
	}
	var admitted int64
	for i, call := range sent {
		a := call.a
		waitingTicket := func(entry, pos int64, repeat bool) couponq.Ticket {
			return couponq.Ticket{Campaign: a.Campaign, User: a.User, Entry: entry, Position: pos,
				State: couponq.StateWaiting, Repeat: repeat, Claimed: claimed}
		}
		switch codes[i] {
		case '0':
			admitted++
			call.t = waitingTicket(seq+admitted, waiting+admitted, false)
		case '5', '1':
			x, err := next(2)
			if err != nil {
				return err
			}
			if codes[i] == '5' {
				admitted++
			}
			call.t = waitingTicket(toInt(x[0]), toInt(x[1]), codes[i] == '1')
		case '2':
			call.err = fmt.Errorf("%w: %s", couponq.ErrSoldOut, a.Campaign)
		case '3':
			x, err := next(1)
			if err != nil {
				return err
			}
			call.err = fmt.Errorf("%w: %s holds %d waiting", couponq.ErrLineFull, a.Campaign, toInt(x[0]))
		case '4':
			x, err := next(2)
			if err != nil {
				return err
			}
			call.t = couponq.Ticket{Campaign: a.Campaign, User: a.User, Entry: toInt(x[0]),
				State: couponq.State(toStr(x[1])), Repeat: true, Claimed: -1}
		default:
			return fmt.Errorf("unexpected reply code %q", codes[i])
		}
	}
	return nil
}
