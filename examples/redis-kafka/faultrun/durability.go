package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// durResult is what one Redis kill -9 cost under one durability mode.
type durResult struct {
	Mode string
	// AdmitRate: 202s a second an api gave, 64 presses in flight, before
	// any fault: what the mode costs admission.
	AdmitRate float64
	// The paced phase: users pressing at Paced a second; Redis killed
	// KillAfter into it and started again from its files Down later.
	Paced     int
	KillAfter time.Duration
	Down      time.Duration
	// Accepted: users answered 202 in the paced phase. Lost: of those, the
	// ones whose status after the restart is not their entry (not_found, or
	// the campaign itself gone). LostLastSecond: lost ones answered within
	// the second before the kill. Reused: entry numbers two users were
	// given (the line's counter went back with the data).
	Accepted, Lost, LostLastSecond, Reused int
	// OldestLost is how long before the kill the earliest lost 202 was
	// answered.
	OldestLost time.Duration
	States     map[string]int // every accepted user's status after the restart
}

// measureDurability admits users through a real api process into a Redis
// of the given durability, kills Redis with -9 mid-stream, starts it again
// from its files, and counts the 202s whose entries are gone. No workers
// run: every accepted entry should still be waiting.
func measureDurability(ctx context.Context, log *slog.Logger, o options, mode, token string) (durResult, error) {
	res := durResult{Mode: mode, Paced: 5000, KillAfter: 4 * time.Second, Down: time.Second, States: map[string]int{}}
	dir := filepath.Join(o.dir, "durability-"+mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	rp, addr, err := redisServer(dir, mode)
	if err != nil {
		return res, err
	}
	f := &fleet{root: o.root, dir: dir, log: log, redis: rp, rdbAddr: addr}
	if err := rp.start(); err != nil {
		return res, err
	}
	defer rp.stop(10 * time.Second)
	if err := f.redisReady(ctx); err != nil {
		return res, err
	}
	api, url, err := phaseAPI(ctx, o, dir, token, addr, "dur", "faultrun-durability-"+mode, "durable")
	if err != nil {
		return res, err
	}
	defer api.stop(10 * time.Second)
	sleep(ctx, 1100*time.Millisecond)

	// Admission's pace under this mode: 10,000 users, 64 in flight.
	warm := newCrowd([]string{url}, []string{"durable"}, 10000, "w", 0, 1)
	t0 := time.Now()
	warm.admit(ctx, t0, 0, 64)
	took := time.Since(t0)
	ok := 0
	for _, c := range warm.clients() {
		if c.Accepted {
			ok++
		}
	}
	res.AdmitRate = float64(ok) / took.Seconds()

	// The paced phase, and the kill in the middle of it.
	users := min(o.durabilityUsers, 200000)
	arrival := time.Duration(float64(users) / float64(res.Paced) * float64(time.Second))
	crowd := newCrowd([]string{url}, []string{"durable"}, users, "d", 0, 2)
	start := time.Now().Add(200 * time.Millisecond)
	var killAt time.Time
	var killErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		sleep(ctx, time.Until(start.Add(res.KillAfter)))
		killAt = time.Now()
		if killErr = rp.kill9(); killErr != nil {
			return
		}
		sleep(ctx, res.Down)
		if killErr = rp.start(); killErr != nil {
			return
		}
		killErr = f.redisReady(ctx)
	})
	crowd.admit(ctx, start, arrival, 64)
	wg.Wait()
	if killErr != nil {
		return res, killErr
	}
	sleep(ctx, 1100*time.Millisecond) // the api's catalog cache
	// Every accepted user asks once where they stand.
	clients := crowd.clients()
	askWhereTheyStand(ctx, crowd, clients, func(_ int, c check.Client, state string) {
		if !c.Accepted {
			return
		}
		res.States[state]++
		res.Accepted++
		if state == "waiting" || state == "in_flight" {
			return
		}
		res.Lost++
		if before := killAt.Sub(c.AcceptedAt); before >= 0 {
			if before <= time.Second {
				res.LostLastSecond++
			}
			res.OldestLost = max(res.OldestLost, before)
		}
	})
	res.Reused = reusedEntries(clients)
	return res, nil
}
