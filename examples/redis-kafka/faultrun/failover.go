package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// The failover phase: the line on a Redis Cluster of 3 masters with one
// replica each, the master that holds the campaign's line killed with -9
// mid-sale, its replica promoted, the killed node started again (it rejoins
// as the new master's replica), once with the api's default admission and
// once with -redis-replica-acks 1.

// Cluster settings of the phase.
const (
	foNodeTimeout = 2000 * time.Millisecond // cluster-node-timeout
	foPaced       = 2000                    // presses a second in the paced phase
	foKillAfter   = 5 * time.Second         // into the paced phase
	foCampaign    = "failover"
	foLag         = time.Second // the stalled replica's pause
)

// foResult is what one master kill -9 cost under one admission mode.
type foResult struct {
	ReplicaAcks int
	// The cost of the mode, before any fault: 10,000 users, 64 in flight.
	AdmitRate float64 // 202s a second
	MasterUS  float64 // CPU of the campaign's master per 202, µs (INFO cpu)
	APIUS     float64 // CPU of the api process per 202, µs (/proc)

	Users     int           // the paced crowd
	Lag       time.Duration // the replica paused this long before the kill (0: not paused)
	LagBytes  int64         // the master's stream the replica had not applied just before the kill (when paused: at the pause)
	Killed    string        // the master killed, and its replica
	Promoted  string
	KillAt    time.Time
	KillToPro time.Duration // kill to the replica reporting role:master
	Rejoined  time.Duration // kill to the killed node, started again, online as the new master's replica
	// From the probe, a new user admitted every 50 ms (one at a time, 2 s
	// timeout): FirstOK, promotion to the first 202 of a probe sent after
	// it; Normal, promotion to the sending of the first probe from which on
	// every probe was answered 202; Outage, the first failed probe after
	// the kill to that one.
	FirstOK, Normal, Outage time.Duration
	Probes, ProbesFailed    int
	FailedAnswers           int // crowd presses answered 5xx or not at all (each retried by the client)
	FailedPresses           int // crowd users never answered 202, after the client's retries
	Accepted                int // crowd users and probes answered 202
	Lost                    int // of them, those whose status after the failover is not their entry
	LostBeforeKill          int // of them, answered before the kill
	Reused                  int // entry numbers two users were given
	States                  map[string]int
	Err                     error    // the phase could not run to the end
	Cost                    []foCost // measured by the first run, before its fault
}

func (r foResult) mode() string {
	if r.ReplicaAcks == 0 {
		return "default (no WAIT)"
	}
	return fmt.Sprintf("`-redis-replica-acks %d` (WAIT %d)", r.ReplicaAcks, r.ReplicaAcks)
}

func (r foResult) fault() string {
	if r.Lag == 0 {
		return "master kill -9"
	}
	return fmt.Sprintf("replica cut off %s before the master's kill -9", r.Lag)
}

// foReport is the phase's results: each run, and the cost of waiting.
type foReport struct {
	Runs []foResult
	Cost []foCost
}

// measureFailovers runs the phase in each mode, without and with a stalled
// replica.
func measureFailovers(ctx context.Context, log *slog.Logger, o options, token string) (*foReport, error) {
	out := &foReport{}
	for _, run := range []struct {
		acks int
		lag  time.Duration
	}{{0, 0}, {1, 0}, {0, foLag}, {1, foLag}} {
		acks := run.acks
		r, err := measureFailover(ctx, log, o, token, acks, run.lag)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			r.Err = err
			log.Error("failover", "replica_acks", acks, "err", err)
		}
		log.Info("failover", "replica_acks", acks, "accepted", r.Accepted, "lost", r.Lost, "reused", r.Reused,
			"failed_presses", r.FailedPresses, "kill_to_promotion", r.KillToPro, "normal_after_promotion", r.Normal)
		out.Runs = append(out.Runs, r)
		if r.Cost != nil {
			out.Cost = r.Cost
		}
	}
	return out, nil
}

// foCluster is the phase's Redis Cluster: 6 redis-server processes.
type foCluster struct {
	nodes []*proc
	addrs []string
}

func (c *foCluster) stop() {
	for _, n := range c.nodes {
		n.stop(10 * time.Second)
	}
}

func (c *foCluster) byAddr(addr string) *proc {
	for i, a := range c.addrs {
		if a == addr {
			return c.nodes[i]
		}
	}
	return nil
}

// startCluster starts 6 nodes in dir and joins them into a Cluster of 3
// masters with one replica each.
func startCluster(ctx context.Context, dir, fsync string) (*foCluster, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (scripts/redis.sh installs it)")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New("redis-cli is not installed (scripts/redis.sh installs it)")
	}
	c := &foCluster{}
	used := map[int]bool{}
	for i := 1; i <= 6; i++ {
		port, err := clusterPort(used)
		if err != nil {
			c.stop()
			return nil, err
		}
		data := filepath.Join(dir, fmt.Sprintf("redis-%d", i))
		if err := os.MkdirAll(data, 0o755); err != nil {
			c.stop()
			return nil, err
		}
		args, err := redisArgs(data, port, fsync)
		if err != nil {
			c.stop()
			return nil, err
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(foNodeTimeout.Milliseconds())), "--repl-diskless-sync-delay", "0")
		p := &proc{name: fmt.Sprintf("redis-%d", i), bin: bin, args: args, dir: dir}
		if err := p.start(); err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, p)
		c.addrs = append(c.addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, a := range c.addrs {
		if err := awaitPort(wait, a); err != nil {
			c.stop()
			return nil, err
		}
	}
	create := exec.CommandContext(wait, cli, append(append([]string{"--cluster", "create"}, c.addrs...), "--cluster-replicas", "1", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		c.stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.awaitHealthy(wait, 3); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// clusterPort is a free loopback port P whose cluster bus port P+10000 is
// free too.
func clusterPort(used map[int]bool) (int, error) {
	free := func(p int) bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	for range 1000 {
		p := 20000 + rand.IntN(25000)
		if !used[p] && !used[p+10000] && free(p) && free(p+10000) {
			used[p], used[p+10000] = true, true
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// nodeInfo reads one field of INFO (or, for section "cluster", CLUSTER
// INFO) from the node at addr.
func nodeInfo(ctx context.Context, addr, section, field string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond})
	defer c.Close()
	var s string
	var err error
	if section == "cluster" {
		s, err = c.ClusterInfo(ctx).Result() // cluster_state is in CLUSTER INFO, not INFO
	} else {
		s, err = c.Info(ctx, section).Result()
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return v, nil
		}
	}
	return "", nil
}

// awaitHealthy waits until every node says cluster_state:ok and masters
// masters each have a replica online.
func (c *foCluster) awaitHealthy(ctx context.Context, masters int) error {
	for {
		ok, online := 0, 0
		for _, a := range c.addrs {
			if s, _ := nodeInfo(ctx, a, "cluster", "cluster_state"); s == "ok" {
				ok++
			}
			if n, _ := nodeInfo(ctx, a, "replication", "connected_slaves"); n == "1" {
				if s, _ := nodeInfo(ctx, a, "replication", "slave0"); strings.Contains(s, "state=online") {
					online++
				}
			}
		}
		if ok == len(c.addrs) && online == masters {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not become healthy (%d of %d nodes ok, %d of %d masters with a replica online): %w",
				ok, len(c.addrs), online, masters, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lineMaster returns the address of the master that holds key's slot, and
// of its replica.
func (c *foCluster) lineMaster(ctx context.Context, key string) (master, replica string, err error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.addrs})
	defer cc.Close()
	m, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return "", "", err
	}
	master = m.Options().Addr
	id, err := m.ClusterMyID(ctx).Result()
	if err != nil {
		return "", "", err
	}
	nodes, err := m.ClusterNodes(ctx).Result()
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.Contains(f[2], "slave") && f[3] == id {
			replica, _, _ = strings.Cut(f[1], "@")
		}
	}
	if replica == "" {
		return "", "", fmt.Errorf("no replica of %s in CLUSTER NODES:\n%s", master, nodes)
	}
	return master, replica, nil
}

// killReplicaLinks closes the replication links of the master at addr.
func killReplicaLinks(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.ClientKillByFilter(ctx, "TYPE", "replica").Err()
}

// replOffset reads a node's replication offset: field master_repl_offset
// of a master, slave_repl_offset of a replica (what it has applied); -1 if
// it does not answer.
func replOffset(ctx context.Context, addr, field string) int64 {
	v, err := nodeInfo(ctx, addr, "replication", field)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// cpuOfNode is a node's CPU time so far (INFO cpu), in seconds.
func cpuOfNode(ctx context.Context, addr string) float64 {
	var s float64
	for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, _ := nodeInfo(ctx, addr, "cpu", f)
		x, _ := strconv.ParseFloat(v, 64)
		s += x
	}
	return s
}

// cpuOfProc is a process's CPU time so far (/proc/PID/stat), in seconds.
func cpuOfProc(p *proc) float64 {
	p.mu.Lock()
	pid := 0
	if p.cmd != nil && p.cmd.Process != nil {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // clock ticks (USER_HZ 100 on Linux)
}

// measureFailover is one run of the phase.
func measureFailover(ctx context.Context, log *slog.Logger, o options, token string, acks int, lag time.Duration) (foResult, error) {
	res := foResult{ReplicaAcks: acks, Lag: lag, Users: o.failoverUsers, States: map[string]int{}}
	dir := filepath.Join(o.dir, fmt.Sprintf("failover-acks%d-lag%s", acks, lag))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	cl, err := startCluster(ctx, dir, o.fsync)
	if err != nil {
		return res, err
	}
	defer cl.stop()
	api, url, err := phaseAPI(ctx, o, dir, token, strings.Join(cl.addrs, ","), "fo", fmt.Sprintf("faultrun-failover-%d", acks), foCampaign,
		"-redis-replica-acks", strconv.Itoa(acks))
	if err != nil {
		return res, err
	}
	defer api.stop(10 * time.Second)
	sleep(ctx, 1100*time.Millisecond) // the api's catalog cache
	master, replica, err := cl.lineMaster(ctx, "fo:{"+foCampaign+"}:line")
	if err != nil {
		return res, err
	}
	res.Killed, res.Promoted = master, replica

	if acks == 0 && lag == 0 && o.failoverCost > 0 {
		if res.Cost, err = measureWaitCost(ctx, cl.addrs, master, o.failoverCost); err != nil {
			return res, fmt.Errorf("cost of waiting: %w", err)
		}
	}

	// The mode's cost through the api: 10,000 users, 64 in flight.
	warm := newCrowd([]string{url}, []string{foCampaign}, 10000, "w", 0, 1)
	m0, a0, t0 := cpuOfNode(ctx, master), cpuOfProc(api), time.Now()
	warm.admit(ctx, t0, 0, 64)
	took := time.Since(t0)
	m1, a1 := cpuOfNode(ctx, master), cpuOfProc(api)
	ok := 0
	for _, c := range warm.clients() {
		if c.Accepted {
			ok++
		}
	}
	if ok == 0 {
		return res, errors.New("no admission succeeded before the fault")
	}
	res.AdmitRate = float64(ok) / took.Seconds()
	res.MasterUS = (m1 - m0) * 1e6 / float64(ok)
	res.APIUS = (a1 - a0) * 1e6 / float64(ok)

	// The paced phase, and the kill in the middle of it.
	users := max(o.failoverUsers, 1)
	arrival := time.Duration(float64(users) / foPaced * float64(time.Second))
	crowd := newCrowd([]string{url}, []string{foCampaign}, users, "f", 0, 3)
	start := time.Now().Add(200 * time.Millisecond)
	var promotedAt, rejoinedAt time.Time
	applied := int64(-1)
	var killErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		sleep(ctx, time.Until(start.Add(foKillAfter-lag)))
		if lag > 0 {
			// The replica is cut off from its master for lag before the
			// master dies (the api still reaches the master): paused, so it
			// does not reconnect, and its link closed by the master, so
			// nothing written from then on reaches it (what was in the
			// sockets' buffers still does).
			applied = replOffset(ctx, replica, "slave_repl_offset")
			if killErr = cl.byAddr(replica).signal(syscall.SIGSTOP); killErr != nil {
				return
			}
			if killErr = killReplicaLinks(ctx, master); killErr != nil {
				return
			}
			sleep(ctx, lag)
		}
		if lag == 0 {
			applied = replOffset(ctx, replica, "slave_repl_offset")
		}
		if m := replOffset(ctx, master, "master_repl_offset"); m >= 0 && applied >= 0 {
			res.LagBytes = m - applied
		}
		res.KillAt = time.Now()
		if killErr = cl.byAddr(master).kill9(); killErr != nil {
			return
		}
		if lag > 0 {
			if killErr = cl.byAddr(replica).signal(syscall.SIGCONT); killErr != nil {
				return
			}
		}
		// The replica's promotion, seen from the replica.
		if !pollUntil(ctx, res.KillAt.Add(60*time.Second), func() bool {
			role, _ := nodeInfo(ctx, replica, "replication", "role")
			return role == "master"
		}) {
			killErr = fmt.Errorf("%s was not promoted within 60 s of the kill", replica)
			return
		}
		promotedAt = time.Now()
		// A supervisor starts the killed node again: it rejoins as the new
		// master's replica.
		if killErr = cl.byAddr(master).start(); killErr != nil {
			return
		}
		if !pollUntil(ctx, res.KillAt.Add(90*time.Second), func() bool {
			s, _ := nodeInfo(ctx, replica, "replication", "slave0")
			return strings.Contains(s, "state=online")
		}) {
			killErr = fmt.Errorf("%s did not rejoin as a replica within 90 s of the kill", master)
			return
		}
		rejoinedAt = time.Now()
	})
	stopProbe := make(chan struct{})
	probed := make(chan []foProbe, 1)
	go func() { probed <- probeAdmissions(ctx, url, stopProbe) }()
	crowd.admit(ctx, start, arrival, 256)
	wg.Wait()
	close(stopProbe)
	probes := <-probed
	if killErr != nil {
		return res, killErr
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.KillToPro = promotedAt.Sub(res.KillAt)
	res.Rejoined = rejoinedAt.Sub(res.KillAt)

	presses := crowd.pressLog()
	for _, p := range presses {
		switch p.Outcome {
		case "accepted", "repeat", "ticket":
		default:
			res.FailedAnswers++
		}
	}
	_ = writeJSONL(filepath.Join(dir, "presses.jsonl"), presses)
	_ = writeJSONL(filepath.Join(dir, "probes.jsonl"), probes)

	// Recovery, from the probes.
	res.Probes, res.FirstOK = len(probes), -1
	var firstFail, normalAt time.Time
	for i := len(probes) - 1; i >= 0; i-- {
		if !probes[i].OK {
			break
		}
		normalAt = probes[i].Sent
	}
	for _, pr := range probes {
		if !pr.OK {
			res.ProbesFailed++
			if pr.Sent.After(res.KillAt) && firstFail.IsZero() {
				firstFail = pr.Sent
			}
		}
		if pr.OK && pr.Sent.After(promotedAt) && res.FirstOK < 0 {
			res.FirstOK = pr.Answered.Sub(promotedAt)
		}
	}
	if !normalAt.IsZero() {
		res.Normal = max(normalAt.Sub(promotedAt), 0)
	}
	if !firstFail.IsZero() && !normalAt.IsZero() {
		res.Outage = normalAt.Sub(firstFail)
	}

	// The cluster healthy again, every accepted user asks once where they
	// stand.
	hctx, hcancel := context.WithTimeout(ctx, 60*time.Second)
	defer hcancel()
	if err := cl.awaitHealthy(hctx, 3); err != nil {
		return res, err
	}
	clients := crowd.clients()
	crowdUsers := len(clients)
	for _, pr := range probes {
		clients = append(clients, check.Client{User: pr.User, Campaign: foCampaign, Accepted: pr.OK, AcceptedAt: pr.Answered, Entry: pr.Entry})
	}
	askWhereTheyStand(ctx, crowd, clients, func(i int, c check.Client, state string) {
		if !c.Accepted {
			if i < crowdUsers {
				res.FailedPresses++
			}
			return
		}
		res.States[state]++
		res.Accepted++
		if state == "waiting" || state == "in_flight" {
			return
		}
		res.Lost++
		if c.AcceptedAt.Before(res.KillAt) {
			res.LostBeforeKill++
		}
	})
	res.Reused = reusedEntries(append(warm.clients(), clients...))
	return res, nil
}

// foProbe is one probe admission.
type foProbe struct {
	User           string
	Sent, Answered time.Time
	OK             bool
	Outcome        string
	Entry          int64
}

// probeAdmissions admits a new user every 50 ms, one at a time, each with a
// 2 s timeout, until stop is closed.
func probeAdmissions(ctx context.Context, url string, stop <-chan struct{}) []foProbe {
	pc := newCrowd([]string{url}, []string{foCampaign}, 1, "p", 0, 4)
	var out []foProbe
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-stop:
			return out
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		m := &member{Client: check.Client{User: "p-" + strconv.Itoa(i), Campaign: foCampaign}}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sent := time.Now()
		outcome, entry, _ := pc.post(pctx, m, 0)
		cancel()
		out = append(out, foProbe{User: m.User, Sent: sent, Answered: time.Now(), OK: outcome == "accepted", Outcome: outcome, Entry: entry})
	}
}

// failoverSection writes the report's "Redis Cluster failover" section.
func (r *report) failoverSection(p func(string, ...any)) {
	p("## Redis Cluster failover")
	p("")
	p("A Redis Cluster of its own for each run: 3 masters with one replica each (6 `redis-server` processes, %s, `appendonly %s`%s, `cluster-node-timeout %d`, `repl-diskless-sync-delay 0`), created with `redis-cli --cluster create ... --cluster-replicas 1`; one `api` process given the six addresses (`-redis a,b,...`: a Cluster client); no worker (every accepted entry should still be waiting afterwards). First 10,000 users as fast as 64 in flight allow; then %d users pressing at %d a second, up to 256 in flight; %s into that, the master holding the campaign's line (`fo:{%s}:*`) is killed with `kill -9` (in two of the runs, its replica is cut off from it for the %s before the kill — paused with SIGSTOP, its link closed by the master with `CLIENT KILL TYPE replica`, so nothing written from then on reaches it, while the api still reaches the master — and resumed right after the kill); once its replica reports `role:master`, the killed node is started again from its files, as a supervisor would, and rejoins as the new master's replica. A press answered 5xx or not at all is tried again, up to 9 tries, backoff to 2 s. Then, the cluster healthy, every user answered 202 asks for their status once.",
		version("redis-server", "--version"), yesNo(r.opts.fsync != fsyncOff), fsyncNote(r.opts.fsync), foNodeTimeout.Milliseconds(),
		r.opts.failoverUsers, foPaced, foKillAfter, foCampaign, foLag)
	p("")
	p("| fault | mode | replica's unapplied stream at the kill | kill → promotion | promotion → first 202 | promotion → normal | outage (probes failing) | probes failed / sent | crowd answers 5xx or none | crowd users never answered 202 | kill → old master back as replica | answered 202 | lost 202s (of them answered before the kill) | entry numbers given twice | statuses afterwards |")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, f := range r.failover.Runs {
		if f.Err != nil {
			p("| %s | %s | the phase failed: %v |||||||||||| |", f.fault(), f.mode(), f.Err)
			continue
		}
		first := "none"
		if f.FirstOK >= 0 {
			first = ms(f.FirstOK)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %d / %d | %d | %d | %s | %d | **%d** (%d) | **%d** | %s |", f.fault(), f.mode(), bytesOf(f.LagBytes),
			ms(f.KillToPro), first, ms(f.Normal), ms(f.Outage), f.ProbesFailed, f.Probes, f.FailedAnswers, f.FailedPresses, ms(f.Rejoined),
			f.Accepted, f.Lost, f.LostBeforeKill, f.Reused, kv(f.States))
	}
	p("")
	p("Recovery is read from a probe beside the crowd: a new user admitted every 50 ms, one at a time, 2 s timeout. *promotion → first 202* is to the answer of the first probe sent after the promotion that was admitted; *promotion → normal* to the sending of the first probe from which on every probe was admitted; *outage* from the first probe that failed after the kill to that one. *replica's unapplied stream* is the master's replication offset just before the kill less the replica's (read just before the kill, or, when it was cut off, just before that: part of it may be in the sockets' buffers and still reach the replica). *lost 202s* are users (crowd and probes) answered 202 whose status afterwards is not a place in line (`not_found`); *entry numbers given twice* counts numbers two users were given (the promoted replica's counter behind the dead master's). A press answered 5xx or not at all is retried by the crowd's client, so *crowd users never answered 202* are those who gave up after 9 tries.")
	p("")
	if len(r.failover.Cost) > 0 {
		p("What waiting for the replica costs, on the same Cluster before the fault, without HTTP: `redisq.New` on a Cluster client in this process, 64 callers admitting new users of one campaign, each mode %d admissions, interleaved twice; CPU of the campaign's master (`INFO cpu`) and of this process (`getrusage`), per admission:", r.failover.Cost[0].N)
		p("")
		p("| mode | coalescing | admissions/s | master CPU per admission | client CPU per admission |")
		p("|---|---|--:|--:|--:|")
		for _, c := range r.failover.Cost {
			p("| %s | %s | %.0f | %.1f µs | %.1f µs |", foResult{ReplicaAcks: c.Acks}.mode(), map[bool]string{true: "on (default)", false: "off"}[c.Coalesced], c.Rate, c.MasterUS, c.ClientUS)
		}
		p("")
	}
	p("Through the api, 10,000 users as fast as 64 in flight allow before each fault (noisier: one run each, the api's HTTP work included):")
	p("")
	p("| fault run | mode | admissions/s | master CPU per admission | api CPU per admission |")
	p("|---|---|--:|--:|--:|")
	for _, f := range r.failover.Runs {
		if f.Err == nil {
			p("| %s | %s | %.0f | %.1f µs | %.1f µs |", f.fault(), f.mode(), f.AdmitRate, f.MasterUS, f.APIUS)
		}
	}
	p("")
	p("Replication is asynchronous: by default a 202 means the master has the entry, and a master killed before its replica read its last writes loses them in the failover, and the promoted replica hands their entry numbers out again. With `redisq.Config.ReplicaAcks` (the api's `-redis-replica-acks`), each admission call waits (`WAIT`, on the admission's connection, after the script) until that many replicas have it, and answers 503 `unavailable` when fewer do within `ReplicaTimeout` (500 ms by default); with one replica per master, the new master has no replica until the killed node rejoins, so admissions to its campaigns answer 503 meanwhile (a second replica per master keeps them going). Direct cost on one master with one replica, without HTTP: `COUPONQ_REPLICA_COST_ADMISSIONS=100000 go test -run ReplicaAcksCost -v ./internal/redisline/`. Only this phase: `FUZZTIME=0 scripts/reliability.sh -durability '' -hostile=false -skip-fleet -out /tmp/failover.md`.")
	p("")
}

func bytesOf(n int64) string {
	if n < 0 {
		return "unknown"
	}
	return thousands(int(n)) + " bytes"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// foCost is what one admission mode costs, measured directly.
type foCost struct {
	Acks                     int
	Coalesced                bool
	N                        int // admissions per round
	Rate, MasterUS, ClientUS float64
	took                     time.Duration
	master, client           float64
}

// measureWaitCost admits n new users per mode and round through redisq on
// a Cluster client, 64 callers, with and without ReplicaAcks 1, coalescing
// on and off, two rounds interleaved; master is the address of the
// campaign's master.
func measureWaitCost(ctx context.Context, addrs []string, master string, n int) ([]foCost, error) {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 128})
	defer rdb.Close()
	out := []foCost{{Acks: 0, Coalesced: true}, {Acks: 1, Coalesced: true}, {Acks: 0}, {Acks: 1}}
	var users atomic.Int64
	for range 2 {
		for i := range out {
			c := &out[i]
			backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: "fo", ReplicaAcks: c.Acks, DisableCoalescing: !c.Coalesced})
			if err != nil {
				return nil, err
			}
			m0, s0, t0 := cpuOfNode(ctx, master), selfCPU(), time.Now()
			var done atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for done.Add(1) <= int64(n) && ctx.Err() == nil {
						u := "cost-" + strconv.FormatInt(users.Add(1), 10)
						if _, err := backend.Queue.Admit(ctx, couponq.Admission{Campaign: foCampaign, User: u}); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				return nil, err
			}
			c.took += time.Since(t0)
			c.master += cpuOfNode(ctx, master) - m0
			c.client += selfCPU() - s0
			c.N = n
		}
	}
	for i := range out {
		c := &out[i]
		c.Rate = float64(2*n) / c.took.Seconds()
		c.MasterUS = c.master * 1e6 / float64(2*n)
		c.ClientUS = c.client * 1e6 / float64(2*n)
	}
	return out, nil
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// pollUntil checks cond every 20 ms until it holds (true) or deadline
// passes or ctx ends (false).
func pollUntil(ctx context.Context, deadline time.Time, cond func() bool) bool {
	for ctx.Err() == nil {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return false
}
