package redisline

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
)

// stallingServer accepts connections, records what they send and closes
// each after hold: a Redis that takes that long to fail every call. It
// refuses HELLO at once, as a Redis before 6 does, so the client goes on to
// send its command.
type stallingServer struct {
	ln   net.Listener
	hold time.Duration
	mu   sync.Mutex
	got  bytes.Buffer
	wg   sync.WaitGroup
}

func newStallingServer(t *testing.T, hold time.Duration) *stallingServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &stallingServer{ln: ln, hold: hold}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(hold))
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					s.mu.Lock()
					s.got.Write(buf[:n])
					s.mu.Unlock()
					if bytes.Contains(bytes.ToLower(buf[:n]), []byte("hello")) {
						_, _ = conn.Write([]byte("-ERR unknown command 'hello'\r\n"))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *stallingServer) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// A coalesced admission whose caller leaves before its batch is sent is
// taken back: the caller hears its context's error and nothing of it
// reaches Redis. (One that leaves after its batch was sent waits for the
// batch and gets the real outcome; the leader's own call is that case.)
func TestCoalescedCallerLeavingBeforeSendWritesNothing(t *testing.T) {
	srv := newStallingServer(t, 300*time.Millisecond)
	rdb := redis.NewClient(&redis.Options{Addr: srv.ln.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	q, err := New(Config{Client: rdb})
	require.NoError(t, err)

	leaderDone := make(chan error, 1)
	go func() {
		_, err := q.Admit(context.Background(), couponq.Admission{Campaign: "c", User: "leader", At: time.Now()})
		leaderDone <- err
	}()
	require.Eventually(t, func() bool { return bytes.Contains([]byte(srv.received()), []byte("leader")) }, 2*time.Second, time.Millisecond,
		"the leader's batch is on its way: got %q", srv.received())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = q.Admit(ctx, couponq.Admission{Campaign: "c", User: "leaver", At: time.Now()})
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	lerr := <-leaderDone
	require.Error(t, lerr, "the stalling server fails the leader's batch")
	assert.False(t, errors.Is(lerr, context.DeadlineExceeded))
	time.Sleep(50 * time.Millisecond) // a flusher that had kept the leaver would send it now
	assert.NotContains(t, srv.received(), "leaver", "the withdrawn admission never reached Redis")
	q.coalesce.g.mu.Lock()
	defer q.coalesce.g.mu.Unlock()
	assert.Empty(t, q.coalesce.g.pending, "nothing left queued")
}

// manyTickets reads admit_many.lua's reply: claimed, the entry counter
// and the count waiting before the call, a code per user, then the extras
// of the codes that carry any, in order.
func TestManyTickets(t *testing.T) {
	calls := func(users ...string) []*admitCall {
		var out []*admitCall
		for _, u := range users {
			out = append(out, &admitCall{a: couponq.Admission{Campaign: "c", User: u}})
		}
		return out
	}
	sent := calls("new", "again", "flight", "gone", "sold", "full", "new2", "odd", "new3")
	reply := []any{int64(7), int64(11), int64(4), "014423050",
		int64(3), int64(2), // again
		int64(9), "in_flight", // flight
		int64(1), "rejected", // gone
		int64(40),            // full
		int64(30), int64(20), // odd
	}
	require.NoError(t, manyTickets(sent, reply))
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "new", Entry: 12, Position: 5, State: couponq.StateWaiting, Claimed: 7}, sent[0].t)
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "again", Entry: 3, Position: 2, State: couponq.StateWaiting, Repeat: true, Claimed: 7}, sent[1].t)
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "flight", Entry: 9, State: couponq.StateInFlight, Repeat: true, Claimed: -1}, sent[2].t)
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "gone", Entry: 1, State: couponq.StateRejected, Repeat: true, Claimed: -1}, sent[3].t)
	assert.ErrorIs(t, sent[4].err, couponq.ErrSoldOut)
	assert.ErrorIs(t, sent[5].err, couponq.ErrLineFull)
	assert.Contains(t, sent[5].err.Error(), "40 waiting")
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "new2", Entry: 13, Position: 6, State: couponq.StateWaiting, Claimed: 7}, sent[6].t)
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "odd", Entry: 30, Position: 20, State: couponq.StateWaiting, Claimed: 7}, sent[7].t)
	assert.Equal(t, couponq.Ticket{Campaign: "c", User: "new3", Entry: 15, Position: 8, State: couponq.StateWaiting, Claimed: 7}, sent[8].t,
		"a user answered 5 counts among those admitted")

	assert.Error(t, manyTickets(calls("a", "b"), []any{int64(0), int64(0), int64(0), "0"}), "a code missing")
	assert.Error(t, manyTickets(calls("a"), []any{int64(0), int64(0), int64(0), "4", int64(1)}), "a state missing")
	assert.Error(t, manyTickets(calls("a"), []any{int64(0), int64(0), int64(0), "9"}), "an unknown code")
	assert.Error(t, manyTickets(calls("a"), []any{int64(0), int64(0)}), "short")
}
