package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// fleet is the production shape the run drives: its own Redis (with AOF),
// api and worker processes, the workers reaching Redis and Kafka through
// toxiproxy, the 3-broker Kafka and PostgreSQL of scripts/.
type fleet struct {
	root       string // the repository, for scripts/
	dir        string // logs and data
	log        *slog.Logger
	redis      *proc
	rdbAddr    string // Redis, directly (the apis, the run itself)
	apis       []*proc
	workers    []*proc
	toxi       *toxi
	redisProxy string   // the proxy to Redis, by toxiproxy name
	kafka      []string // the proxies to the brokers, by toxiproxy name
	// ready reports whether the crowd's router sees an api ("api-1") ready.
	ready func(name string) bool
}

// fault is one entry of the schedule: at At after the load starts (or when
// the one before it is over, if later), do it.
type fault struct {
	At     time.Duration
	Kind   string
	Target string // "api-1", "broker-2"; empty for roles found at the time (leader, issuer)
	For    time.Duration
}

// schedule is the run's faults: each role killed three times, two brokers
// killed and restarted in place, Redis killed and restarted from its AOF
// and paused, the workers' links to Redis and Kafka cut and slowed, and a
// rolling deploy of every api and worker while the crowd presses.
// Faults are 12–25 s apart, so each one's effect (a consumer group
// rebalancing, a partition leader moving) mostly settles before the next.
func schedule() []fault {
	return []fault{
		{At: 10 * time.Second, Kind: "kill-issuer", For: 2 * time.Second},
		{At: 22 * time.Second, Kind: "kill-leader", For: 2 * time.Second},
		{At: 35 * time.Second, Kind: "kill-api", Target: "api-1", For: 2 * time.Second},
		{At: 48 * time.Second, Kind: "kill-broker", Target: "broker-1", For: 10 * time.Second},
		{At: 72 * time.Second, Kind: "stop-redis", Target: "redis", For: 5 * time.Second},
		{At: 88 * time.Second, Kind: "kill-redis", Target: "redis", For: 2 * time.Second},
		{At: 102 * time.Second, Kind: "rolling-deploy", Target: "api-1,api-2,worker-1,worker-2"},
		{At: 130 * time.Second, Kind: "cut-redis", Target: "workers->redis", For: 5 * time.Second},
		{At: 146 * time.Second, Kind: "kill-api", Target: "api-2", For: 2 * time.Second},
		{At: 158 * time.Second, Kind: "kill-leader", For: 2 * time.Second},
		{At: 170 * time.Second, Kind: "cut-kafka", Target: "workers->kafka", For: 5 * time.Second},
		{At: 186 * time.Second, Kind: "kill-issuer", For: 2 * time.Second},
		{At: 198 * time.Second, Kind: "latency-redis", Target: "workers->redis", For: 10 * time.Second},
		{At: 218 * time.Second, Kind: "kill-api", Target: "api-1", For: 2 * time.Second},
		{At: 230 * time.Second, Kind: "kill-broker", Target: "broker-2", For: 10 * time.Second},
		{At: 256 * time.Second, Kind: "latency-kafka", Target: "workers->kafka", For: 10 * time.Second},
		{At: 276 * time.Second, Kind: "kill-leader", For: 2 * time.Second},
		{At: 288 * time.Second, Kind: "kill-issuer", For: 2 * time.Second},
	}
}

// deployPause is how long a rolling deploy waits after one process is back
// and ready before it stops the next, as a deploy tool's pause does.
const deployPause = time.Second

// rollingDeploy stops each process of targets in turn with SIGTERM (a
// graceful shutdown: an api drains, a worker hands its lease and its
// partitions over), starts it again at once, and stops the next only once
// it is back and ready: an api when the crowd's router sees its /readyz
// answer 200 again, a worker when its consumer has its partitions. The
// crowd keeps pressing throughout.
func (f *fleet) rollingDeploy(ctx context.Context, ev *check.Fault, targets []string) error {
	ev.Start = time.Now()
	var steps []string
	for i, name := range targets {
		if i > 0 {
			sleep(ctx, deployPause)
		}
		pr := f.byName(append(append([]*proc{}, f.apis...), f.workers...), name)
		if pr == nil {
			return fmt.Errorf("no %s", name)
		}
		t0 := time.Now()
		pr.stop(60 * time.Second)
		stopped := time.Now()
		if err := pr.start(); err != nil {
			return err
		}
		wait, cancel := context.WithTimeout(ctx, 60*time.Second)
		var err error
		if strings.HasPrefix(name, "api-") {
			if _, err = pr.awaitLog(wait, "api serving"); err == nil {
				err = f.awaitReady(wait, name)
			}
		} else if _, err = pr.awaitLog(wait, "worker running"); err == nil {
			// Back means consuming again; a static member gets its
			// partitions back as it joins. A worker that gets none (the
			// group gave them all to the other) is back after 10 s.
			pwait, pcancel := context.WithTimeout(wait, 10*time.Second)
			_, _ = pr.awaitLog(pwait, "partitions assigned")
			pcancel()
		}
		cancel()
		if err != nil {
			return err
		}
		steps = append(steps, fmt.Sprintf("%s stopped in %s, back in %s", name,
			stopped.Sub(t0).Round(10*time.Millisecond), time.Since(stopped).Round(10*time.Millisecond)))
	}
	ev.End = time.Now()
	ev.Note = "SIGTERM, restarted at once, the next after the previous was back and ready: " + strings.Join(steps, "; ")
	return nil
}

// awaitReady waits until the crowd's router sees the api ready.
func (f *fleet) awaitReady(ctx context.Context, name string) error {
	for {
		if f.ready != nil && f.ready(name) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: /readyz did not answer 200: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// inject runs the schedule from start, one fault at a time, and returns
// what hit when.
func (f *fleet) inject(ctx context.Context, start time.Time, plan []fault) ([]check.Fault, error) {
	var out []check.Fault
	for _, p := range plan {
		sleep(ctx, time.Until(start.Add(p.At)))
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		got, err := f.one(ctx, p)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", p.Kind, p.Target, err)
		}
		f.log.Info("fault", "kind", got.Kind, "target", got.Target, "at", got.Start.Sub(start).Round(10*time.Millisecond),
			"lasted", got.End.Sub(got.Start).Round(10*time.Millisecond), "note", got.Note)
		out = append(out, got)
	}
	return out, nil
}

func (f *fleet) one(ctx context.Context, p fault) (check.Fault, error) {
	ev := check.Fault{Kind: p.Kind, Target: p.Target}
	restart := func(pr *proc, ready string) error {
		ev.Start = time.Now()
		if err := pr.kill9(); err != nil {
			return err
		}
		sleep(ctx, p.For)
		if err := pr.start(); err != nil {
			return err
		}
		wait, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := pr.awaitLog(wait, ready)
		ev.End = time.Now()
		return err
	}
	switch p.Kind {
	case "rolling-deploy":
		return ev, f.rollingDeploy(ctx, &ev, strings.Split(p.Target, ","))
	case "kill-api":
		pr := f.byName(f.apis, p.Target)
		if pr == nil {
			return ev, fmt.Errorf("no %s", p.Target)
		}
		return ev, restart(pr, "api serving")
	case "kill-leader", "kill-issuer":
		leader, err := f.leader(ctx)
		if err != nil {
			return ev, err
		}
		pr := leader
		if p.Kind == "kill-issuer" {
			for _, w := range f.workers {
				if w != leader {
					pr = w
				}
			}
			ev.Note = "the worker that did not lead (" + leader.name + " led)"
		} else {
			ev.Note = "the worker that led the scheduler"
		}
		ev.Target = pr.name
		return ev, restart(pr, "worker running")
	case "kill-broker":
		i := strings.TrimPrefix(p.Target, "broker-")
		ev.Start = time.Now()
		if err := f.script(ctx, "kafka.sh", "kill", "3", i); err != nil {
			return ev, err
		}
		sleep(ctx, p.For)
		err := f.script(ctx, "kafka.sh", "restart", "3", i)
		ev.End = time.Now()
		ev.Note = "kill -9, restarted in place (same port, same data)"
		return ev, err
	case "kill-redis":
		ev.Start = time.Now()
		if err := f.redis.kill9(); err != nil {
			return ev, err
		}
		sleep(ctx, p.For)
		if err := f.redis.start(); err != nil {
			return ev, err
		}
		err := f.redisReady(ctx)
		ev.End = time.Now()
		ev.Note = "kill -9, restarted from its append-only file"
		return ev, err
	case "stop-redis":
		ev.Start = time.Now()
		if err := f.redis.signal(syscall.SIGSTOP); err != nil {
			return ev, err
		}
		sleep(ctx, p.For)
		err := f.redis.signal(syscall.SIGCONT)
		ev.End = time.Now()
		ev.Note = "SIGSTOP, then SIGCONT"
		return ev, err
	case "cut-redis", "cut-kafka":
		names := []string{f.redisProxy}
		if p.Kind == "cut-kafka" {
			names = f.kafka
		}
		ev.Start = time.Now()
		for _, n := range names {
			if err := f.toxi.enable(ctx, n, false); err != nil {
				return ev, err
			}
		}
		sleep(ctx, p.For)
		for _, n := range names {
			if err := f.toxi.enable(ctx, n, true); err != nil {
				return ev, err
			}
		}
		ev.End = time.Now()
		ev.Note = "toxiproxy: proxies disabled (every connection closed, new ones refused)"
		return ev, nil
	case "latency-redis", "latency-kafka":
		names, d := []string{f.redisProxy}, 100*time.Millisecond
		if p.Kind == "latency-kafka" {
			names, d = f.kafka, 200*time.Millisecond
		}
		ev.Start = time.Now()
		for _, n := range names {
			if err := f.toxi.latency(ctx, n, d, d/5); err != nil {
				return ev, err
			}
		}
		sleep(ctx, p.For)
		for _, n := range names {
			if err := f.toxi.heal(ctx, n); err != nil {
				return ev, err
			}
		}
		ev.End = time.Now()
		ev.Note = fmt.Sprintf("toxiproxy: +%s ±%s each way", d, d/5)
		return ev, nil
	}
	return ev, fmt.Errorf("unknown fault kind %q", p.Kind)
}

func (f *fleet) byName(ps []*proc, name string) *proc {
	for _, p := range ps {
		if p.name == name {
			return p
		}
	}
	return nil
}

// leader is the running worker whose scheduler leads, as its log says: its
// last "scheduler leads" comes after its last step-down. Waits up to 15 s
// for one (a leader was just killed, say).
func (f *fleet) leader(ctx context.Context) (*proc, error) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, w := range f.workers {
			if !w.running() {
				continue
			}
			file, _ := w.logFile()
			if leads(file) {
				return w, nil
			}
		}
		sleep(ctx, 100*time.Millisecond)
	}
	return nil, fmt.Errorf("no worker leads the scheduler")
}

func leads(file string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	s := string(b)
	lead := strings.LastIndex(s, "couponq: scheduler leads")
	lost := max(strings.LastIndex(s, "couponq: scheduler steps down"), strings.LastIndex(s, "couponq: scheduler lost leadership"))
	return lead >= 0 && lead > lost
}

// redisReady waits until the run's Redis answers PING (after loading its
// files).
func (f *fleet) redisReady(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: f.rdbAddr, MaxRetries: -1})
	defer rdb.Close()
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if err := rdb.Ping(wait).Err(); err == nil {
			return nil
		} else if wait.Err() != nil {
			return fmt.Errorf("redis did not come back: %w", err)
		}
		sleep(wait, 50*time.Millisecond)
	}
}

// script runs one of the repository's scripts.
func (f *fleet) script(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(f.root, "scripts", name), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
