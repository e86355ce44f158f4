// Command faultrun is couponq's reliability suite: it runs the production
// shape as separate processes — two api processes, two worker processes, a
// Redis of its own with an append-only file, the 3-broker Kafka of
// scripts/kafka.sh (replication factor 3, min.insync.replicas 2) and the
// PostgreSQL Store of scripts/postgres.sh, the workers reaching Redis and
// Kafka through toxiproxy — drives a crowd of users through it, injects
// faults on a schedule (kill -9 of every role three times, broker kill -9
// and restart in place, Redis kill -9 and restart from its AOF, Redis
// paused, the workers' network cut and slowed), lets every line drain, and
// holds the result to the invariants with a checker (package check) that
// reads the Store, the topic and the crowd's records on its own. Before
// that it measures what a Redis kill -9 loses under each durability mode and what a
// Redis Cluster failover loses (the master holding a line killed -9, with
// and without replica-acknowledged admission: failover.go),
// and attacks one api process as hostile clients would (hostile.go): a
// flood of status requests for made-up campaigns against its heap, held
// and trickled connections against its timeouts, streams past the caps,
// the admin credentials, campaign values meant to overflow. It writes
// RELIABILITY.md.
//
// Run it through scripts/reliability.sh, which starts the servers, builds
// the programs, fuzzes, and passes them in:
//
//	scripts/reliability.sh                 # everything, ~15 minutes, writes RELIABILITY.md
//
// Every server it starts or reaches listens on 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

type options struct {
	root, bin, dir, out, fuzzLog string
	users, conc                  int
	campaigns                    []check.Campaign
	batch                        int
	interval, arrival, drain     time.Duration
	repeat                       float64
	fsync                        string
	durability                   []string
	durabilityUsers              int
	failover                     bool // the Redis Cluster failover phase (failover.go)
	failoverUsers, failoverCost  int
	sampleEvery                  int
	noFaults, skipMain, hostile  bool
	baselineUsers                int           // the fault-free baseline fleet run's crowd (0: none)
	baselineArrival              time.Duration // ... and its first presses' spread
	scale                        float64
	maxInFlight                  int
	seed                         uint64
	command                      string
}

func main() {
	var o options
	var campaigns, durability string
	flag.StringVar(&o.root, "root", "../..", "the repository root (for scripts/)")
	flag.StringVar(&o.bin, "bin", "", "directory holding the built api and worker programs (required)")
	flag.StringVar(&o.dir, "dir", "", "directory for logs, data and records (default: a new one under $TMPDIR)")
	flag.StringVar(&o.out, "out", "", "write the report here (RELIABILITY.md); empty: do not write one")
	flag.StringVar(&o.fuzzLog, "fuzz-log", "", "the output of scripts/fuzz.sh for this run, summarized in the report")
	flag.IntVar(&o.users, "users", 100000, "distinct users in the crowd")
	flag.IntVar(&o.conc, "conc", 256, "presses in flight at once, at most")
	// Batch sizes in proportion to stock, so the three sell out together,
	// about five minutes in: every fault of the schedule hits a pipeline
	// that is still issuing.
	flag.StringVar(&campaigns, "campaigns", "gold:8000:7:3,silver:7000:6,bronze:5000:4", "the campaigns, ID:STOCK[:BATCHSIZE[:SHARDS]] comma-separated (SHARDS > 1: a line over that many sub-lines); users are spread over them round-robin")
	flag.IntVar(&o.batch, "batch", 25, "the BatchSize of campaigns that do not name one")
	flag.DurationVar(&o.interval, "interval", 250*time.Millisecond, "every campaign's Interval")
	flag.DurationVar(&o.arrival, "arrival", 120*time.Second, "the users' first presses are spread evenly over this long")
	flag.DurationVar(&o.drain, "drain", 15*time.Minute, "how long, after the last press, every accepted user may wait for an outcome")
	flag.Float64Var(&o.repeat, "repeat", 0.1, "fraction of users who press twice")
	flag.StringVar(&o.fsync, "fsync", fsyncAlways, "the fleet's Redis durability: always, everysec (AOF) or off (RDB snapshots only)")
	flag.StringVar(&durability, "durability", "always,everysec,off", "Redis durability modes to measure a kill -9 under, before the fleet run (empty: none)")
	flag.IntVar(&o.durabilityUsers, "durability-users", 40000, "users admitted in each durability measurement")
	flag.IntVar(&o.sampleEvery, "sample", 10, "the watcher follows one user in this many")
	flag.Float64Var(&o.scale, "schedule-scale", 1, "multiply every fault's time in the schedule by this (0.3: the same faults, closer together, for a shorter run)")
	flag.IntVar(&o.maxInFlight, "max-in-flight-batches", 4, "the workers' -max-in-flight-batches (0: no bound; the checker then allows a Store catch-up burst right after a fault)")
	flag.BoolVar(&o.noFaults, "no-faults", false, "run the fleet without injecting faults (a baseline)")
	flag.IntVar(&o.baselineUsers, "baseline-users", 10000, "before the fleet run with faults, run the same fleet without faults for this many users (0: none): the waits table's normal-running row, since the faults leave the main run almost no wait untouched")
	flag.DurationVar(&o.baselineArrival, "baseline-arrival", 30*time.Second, "the baseline run's first presses are spread evenly over this long")
	flag.BoolVar(&o.skipMain, "skip-fleet", false, "do not run the fleet (measure durability and hostile clients only)")
	flag.BoolVar(&o.failover, "failover", true, "kill -9 the Redis Cluster master holding a campaign's line mid-sale (3 masters, 1 replica each), with the api's default admission and with -redis-replica-acks 1, before the fleet run (about 2 minutes)")
	flag.IntVar(&o.failoverUsers, "failover-users", 30000, "users admitted in each failover measurement (2,000 a second)")
	flag.IntVar(&o.failoverCost, "failover-cost", 20000, "admissions per mode and round in the failover phase's direct measurement of what waiting for a replica costs (0: skip it)")
	flag.BoolVar(&o.hostile, "hostile", true, "attack one api process as hostile clients would (a flood of unknown campaign IDs, held connections, streams past the caps, the admin credentials, overflowing campaign values), about 90 s")
	flag.Uint64Var(&o.seed, "seed", 1, "seed for who presses twice")
	flag.StringVar(&o.command, "command", "scripts/reliability.sh", "the command that reproduces this run, for the report")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	if o.campaigns, err = parseCampaigns(campaigns, o.batch, o.interval); err != nil {
		fail(log, err)
	}
	for _, m := range strings.Split(durability, ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.durability = append(o.durability, m)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, o); err != nil {
		fail(log, err)
	}
}

func fail(log *slog.Logger, err error) {
	log.Error("faultrun", "err", err)
	os.Exit(1)
}

func parseCampaigns(s string, batch int, interval time.Duration) ([]check.Campaign, error) {
	var out []check.Campaign
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), ":")
		if len(f) < 2 || len(f) > 4 || f[0] == "" {
			return nil, fmt.Errorf("-campaigns: %q is not ID:STOCK[:BATCHSIZE[:SHARDS]]", part)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-campaigns: %q: stock must be a positive number", part)
		}
		b, shards := batch, 0
		if len(f) >= 3 {
			if b, err = strconv.Atoi(f[2]); err != nil || b <= 0 {
				return nil, fmt.Errorf("-campaigns: %q: batch size must be a positive number", part)
			}
		}
		if len(f) == 4 {
			if shards, err = strconv.Atoi(f[3]); err != nil || shards <= 0 {
				return nil, fmt.Errorf("-campaigns: %q: shards must be a positive number", part)
			}
		}
		out = append(out, check.Campaign{ID: f[0], Stock: n, BatchSize: b, Interval: interval, PerUserLimit: 1, Shards: shards})
	}
	if len(out) == 0 {
		return nil, errors.New("-campaigns: none")
	}
	return out, nil
}

// env reads a server address the scripts wrote.
func env(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("$%s is not set: run through scripts/reliability.sh, which starts the servers", name)
	}
	return v, nil
}

func run(ctx context.Context, log *slog.Logger, o options) error {
	if o.bin == "" {
		return errors.New("-bin is required")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "couponq-faultrun-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	log.Info("faultrun", "dir", o.dir)
	token := fmt.Sprintf("faultrun-%x", time.Now().UnixNano())
	rep := &report{opts: o, started: time.Now()}

	for _, mode := range o.durability {
		r, err := measureDurability(ctx, log, o, mode, token)
		if err != nil {
			return fmt.Errorf("durability %s: %w", mode, err)
		}
		log.Info("durability", "mode", mode, "accepted", r.Accepted, "lost", r.Lost, "admit_per_sec", int(r.AdmitRate))
		rep.durability = append(rep.durability, r)
	}
	if o.failover {
		fo, err := measureFailovers(ctx, log, o, token)
		if err != nil {
			return fmt.Errorf("failover: %w", err)
		}
		rep.failover = fo
	}
	if o.hostile {
		h, err := measureHostile(ctx, log, o, token)
		if err != nil {
			return fmt.Errorf("hostile clients: %w", err)
		}
		rep.hostile = h
	}
	if !o.skipMain {
		var baseline *check.WaitRow
		if o.baselineUsers > 0 && !o.noFaults {
			var err error
			if baseline, err = runBaseline(ctx, log, o, token); err != nil {
				return fmt.Errorf("baseline run: %w", err)
			}
		}
		if err := runFleet(ctx, log, o, token, rep); err != nil {
			return err
		}
		if baseline != nil && rep.check != nil {
			rep.check.Waits = append([]check.WaitRow{*baseline}, rep.check.Waits...)
		}
	}
	rep.finished = time.Now()
	if o.out != "" {
		if err := rep.write(o.out); err != nil {
			return err
		}
		log.Info("report written", "file", o.out)
	}
	if rep.check != nil && !rep.check.OK() {
		return errors.New("the checker found violations; see the report")
	}
	if rep.hostile != nil && !rep.hostile.ok() {
		return errors.New("a hostile client got past a bound; see the report")
	}
	return nil
}

// runFleet is the fault run proper.
// runBaseline runs the fleet without faults for o.baselineUsers users over
// o.baselineArrival, in a directory of its own, and returns its
// normal-running waits row, named for the run. Its invariants are checked
// like the main run's: a violation fails it.
func runBaseline(ctx context.Context, log *slog.Logger, o options, token string) (*check.WaitRow, error) {
	b := o
	b.noFaults, b.users, b.arrival, b.out = true, o.baselineUsers, o.baselineArrival, ""
	b.dir = filepath.Join(o.dir, "baseline")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	log.Info("baseline run, no faults", "users", b.users, "arrival", b.arrival)
	rep := &report{opts: b, started: time.Now()}
	if err := runFleet(ctx, log, b, token, rep); err != nil {
		return nil, err
	}
	if rep.check == nil || len(rep.check.Waits) == 0 {
		return nil, errors.New("no waits measured")
	}
	if !rep.check.OK() {
		return nil, errors.New("the checker found violations in the baseline run")
	}
	w := rep.check.Waits[0]
	w.Group = fmt.Sprintf("normal running: a baseline run of the same fleet without faults (%d users over %s)", b.users, b.arrival)
	return &w, nil
}

func runFleet(ctx context.Context, log *slog.Logger, o options, token string, rep *report) error {
	brokers, err := env("COUPONQ_KAFKA_CLUSTER")
	if err != nil {
		return err
	}
	routes, err := env("COUPONQ_KAFKA_PROXY_ROUTES")
	if err != nil {
		return err
	}
	pgDSN, err := env("COUPONQ_POSTGRES_DSN")
	if err != nil {
		return err
	}
	toxiAddr, err := env("COUPONQ_TOXIPROXY")
	if err != nil {
		return err
	}
	tag := time.Now().Format("150405")
	run := "fr-" + tag
	dir := filepath.Join(o.dir, "fleet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := &fleet{root: o.root, dir: dir, log: log, toxi: newToxi(toxiAddr)}

	// Redis, with the durability the run is asked for.
	var rdbAddr string
	if f.redis, rdbAddr, err = redisServer(dir, o.fsync); err != nil {
		return err
	}
	f.rdbAddr = rdbAddr
	if err := f.redis.start(); err != nil {
		return err
	}
	defer f.redis.stop(10 * time.Second)
	if err := f.redisReady(ctx); err != nil {
		return err
	}

	// The workers' links go through toxiproxy.
	redisProxy := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
	f.redisProxy = "faultrun-redis"
	if err := f.toxi.proxy(ctx, f.redisProxy, redisProxy, rdbAddr); err != nil {
		return err
	}
	defer f.toxi.remove(context.Background(), f.redisProxy)
	var kafkaProxied []string
	for i, r := range strings.Split(routes, ",") {
		listen, upstream, ok := strings.Cut(r, "=")
		if !ok {
			return fmt.Errorf("COUPONQ_KAFKA_PROXY_ROUTES: %q is not PROXYPORT=EXTERNALPORT", r)
		}
		name := fmt.Sprintf("faultrun-kafka-%d", i+1)
		if err := f.toxi.proxy(ctx, name, "127.0.0.1:"+listen, "127.0.0.1:"+upstream); err != nil {
			return err
		}
		defer f.toxi.remove(context.Background(), name)
		f.kafka = append(f.kafka, name)
		kafkaProxied = append(kafkaProxied, "127.0.0.1:"+listen)
	}

	// A schema of the run's own in the Store's database.
	schema := "faultrun_" + tag
	storeDSN, err := freshSchema(ctx, pgDSN, schema)
	if err != nil {
		return err
	}

	// The fleet.
	var apiURLs, opsURLs []string
	for i := 1; i <= 2; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
		opsAddr := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
		p := &proc{name: fmt.Sprintf("api-%d", i), bin: filepath.Join(o.bin, "api"), dir: dir,
			args: []string{"-addr", addr, "-ops-addr", opsAddr, "-redis", rdbAddr, "-prefix", run, "-kafka", brokers, "-topic", run,
				"-drain-delay", drainDelay.String()},
			env: []string{"COUPONQ_ADMIN_TOKEN=" + token}}
		f.apis = append(f.apis, p)
		apiURLs = append(apiURLs, "http://"+addr)
		opsURLs = append(opsURLs, "http://"+opsAddr)
	}
	for i := 1; i <= 2; i++ {
		f.workers = append(f.workers, &proc{name: fmt.Sprintf("worker-%d", i), bin: filepath.Join(o.bin, "worker"), dir: dir,
			args: []string{"-redis", redisProxy, "-prefix", run, "-kafka", strings.Join(kafkaProxied, ","),
				"-topic", run, "-group", run, "-store", "postgres", "-postgres", storeDSN, "-leader-ttl", "3s", "-progress", "5s",
				"-max-in-flight-batches", strconv.Itoa(o.maxInFlight),
				"-instance-id", fmt.Sprintf("worker-%d", i), "-session-timeout", sessionTimeout.String()}})
	}
	all := append(append([]*proc{}, f.apis...), f.workers...)
	defer func() {
		for _, p := range all {
			p.stop(30 * time.Second)
		}
	}()
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, p := range all {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range f.apis {
		if _, err := p.awaitLog(wait, "api serving"); err != nil {
			return err
		}
	}
	for _, p := range f.workers {
		if _, err := p.awaitLog(wait, "worker running"); err != nil {
			return err
		}
	}
	cs := make([]check.Campaign, len(o.campaigns))
	for i, c := range o.campaigns {
		c.ID = c.ID + "-" + tag
		c.MaxInFlight = o.maxInFlight * c.BatchSize
		cs[i] = c
		if err := createCampaign(ctx, apiURLs[0], token, c); err != nil {
			return err
		}
	}
	sleep(ctx, 1100*time.Millisecond) // every api's catalog cache has forgotten that these were unknown
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	log.Info("fleet running", "run", run, "apis", apiURLs, "campaigns", ids, "users", o.users)

	// The crowd, the watcher, the faults.
	crowd := newCrowd(apiURLs, ids, o.users, "u", o.repeat, o.seed)
	rctx, stopRouter := context.WithCancel(ctx)
	routed := make(chan struct{})
	go func() { crowd.watchReady(rctx, opsURLs, healthEvery); close(routed) }()
	defer func() { stopRouter(); <-routed }()
	f.ready = func(name string) bool {
		for i, a := range f.apis {
			if a.name == name {
				return crowd.ready(i)
			}
		}
		return false
	}
	w := &watcher{crowd: crowd, brokers: brokers, topic: run, sampleEvery: uint32(max(o.sampleEvery, 1))}
	wctx, stopWatcher := context.WithCancel(ctx)
	defer stopWatcher()
	watched := make(chan error, 1)
	go func() { watched <- w.run(wctx) }()

	start := time.Now().Add(time.Second)
	allPressed := make(chan struct{})
	go func() {
		crowd.admit(ctx, start, o.arrival, o.conc)
		close(allPressed)
	}()
	admitted := allPressed
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	polled := make(chan int, 1)
	go func() {
		// While users arrive, polls are light (the watcher's samples give the
		// timing); once everyone has pressed, every accepted user is asked
		// until decided.
		done := func() bool {
			select {
			case <-allPressed:
				return true
			default:
				return false
			}
		}
		polled <- crowd.poll(pollCtx, 32, 1500, time.Second, done)
	}()
	var faults []check.Fault
	injected := make(chan error, 1)
	go func() {
		var err error
		if !o.noFaults {
			plan := schedule()
			for i := range plan {
				plan[i].At = time.Duration(float64(plan[i].At) * o.scale)
			}
			faults, err = f.inject(ctx, start, plan)
		}
		injected <- err
	}()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	var injectErr error
	injectDone, admitDone := false, false
	for !injectDone || !admitDone {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case injectErr = <-injected:
			injectDone = true
			if injectErr != nil {
				log.Error("fault injection stopped", "err", injectErr)
			}
		case <-admitted:
			admitDone = true
			admitted = nil
		case <-progress.C:
			log.Info("progress", "t", time.Since(start).Round(time.Second), "presses", len(crowd.pressLog()),
				"undecided", crowd.undecided(), "polls", crowd.polls.Load(), "faults", len(faults))
		}
	}
	admitEnd := time.Now()
	log.Info("every user has pressed; draining", "undecided", crowd.undecided())
	drainCtx, cancelDrain := context.WithTimeout(ctx, o.drain)
	defer cancelDrain()
	var left int
	for {
		select {
		case left = <-polled:
		case <-drainCtx.Done():
			stopPolls()
			left = <-polled
		case <-progress.C:
			log.Info("draining", "t", time.Since(start).Round(time.Second), "undecided", crowd.undecided(), "polls", crowd.polls.Load())
			continue
		}
		break
	}
	drained := time.Now()
	log.Info("drained", "undecided", left, "took", drained.Sub(admitEnd).Round(time.Second))
	// Give the watcher's last samples a moment, then stop it.
	sleep(ctx, 3*time.Second)
	stopWatcher()
	if err := <-watched; err != nil {
		log.Error("watcher", "err", err)
	}
	// A last look for users the drain timed out on, with the fleet still up.
	crowd.poll(ctx, 64, 5000, 0, func() bool { return true })

	for _, p := range all {
		p.stop(30 * time.Second)
	}
	overIssue := countLogs(f.workers, "msg=OVER-ISSUE")
	clients, presses, samples := crowd.clients(), crowd.pressLog(), w.result()
	for _, err := range []error{
		writeJSONL(filepath.Join(o.dir, "clients.jsonl"), clients),
		writeJSONL(filepath.Join(o.dir, "presses.jsonl"), presses),
		writeJSONL(filepath.Join(o.dir, "samples.jsonl"), samples),
		writeJSONL(filepath.Join(o.dir, "faults.jsonl"), faults),
	} {
		if err != nil {
			return err
		}
	}
	checkCtx, cancelCheck := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelCheck()
	res, err := check.Check(checkCtx, check.Inputs{
		Campaigns: cs, Clients: clients, Presses: presses, Samples: samples, Faults: faults,
		PostgresDSN: storeDSN, KafkaBrokers: brokers, Topic: run, Events: fleetEvents(f.workers),
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	rep.fleet = &fleetResult{run: run, start: start, admitEnd: admitEnd, drained: drained, undecided: left,
		campaigns: cs, faults: faults, clients: clients, presses: presses, samples: samples, overIssueLogs: overIssue,
		polls: crowd.polls.Load(), injectErr: injectErr, leaders: countLogs(f.workers, "couponq: scheduler leads")}
	rep.check = res
	if injectErr != nil {
		return fmt.Errorf("fault injection: %w", injectErr)
	}
	return nil
}

// countLogs counts the lines containing s over every incarnation's log of
// the processes.
func countLogs(ps []*proc, s string) (n int) {
	for _, p := range ps {
		for _, file := range p.logs() {
			n += count(file, s)
		}
	}
	return n
}

// freshSchema creates schema in the database of dsn and returns a DSN whose
// search_path selects it.
func freshSchema(ctx context.Context, dsn, schema string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema, nil
}

// createCampaign creates a campaign through an api's admin handler.
func createCampaign(ctx context.Context, api, token string, c check.Campaign) error {
	body := fmt.Sprintf(`{"id":%q,"stock":%d,"batch_size":%d,"interval_ms":%d,"per_user_limit":%d,"shards":%d}`,
		c.ID, c.Stock, c.BatchSize, c.Interval.Milliseconds(), max(c.PerUserLimit, 1), c.Shards)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/admin/campaigns", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create campaign %s: %s", c.ID, resp.Status)
	}
	return nil
}
