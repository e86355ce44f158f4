package main

// The sharded-line section: one hot campaign's line spread over
// Campaign.Shards sub-lines (the sub-line wrapper, internal/shard) on the
// 3-master Redis Cluster scripts/redis.sh starts, against the same campaign
// on one line.
// Per sub-line count: how fast a crowd is admitted and where its Redis work
// lands (commands and CPU per master), how far the estimated positions are
// from the true ones, and, after the whole pipeline drained the line in
// process (scheduler → in-memory transport → issuer → in-memory Store), how
// far the order of issuance is from the order of admission.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/shard"
	"github.com/couponq/couponq/lock"
)

var (
	shardOnly  = flag.Bool("shard-only", false, "measure only the sharded-line section (one hot campaign over sub-lines on the Redis Cluster) and print it as markdown; writes no report (needs only Redis)")
	shardLines = flag.String("shard-lines", "1,3,6", "sharded-line section: sub-line counts to measure (1 is one line, Shards 0)")
	shardUsers = flag.Int("shard-users", 200_000, "sharded-line section: distinct users admitted")
	shardStock = flag.Int("shard-stock", 50_000, "sharded-line section: the campaign's stock")
	shardConc  = flag.Int("shard-conc", 256, "sharded-line section: goroutines admitting at once")
)

// The section's fixed parameters.
const (
	shardBatch    = 1000
	shardInterval = 10 * time.Millisecond
	// shardSamples is how many users' Status is read for the position
	// estimate, evenly over admission rank.
	shardSamples = 2000
	// shardDrainTimeout bounds the drain: not done by then fails the run.
	shardDrainTimeout = 120 * time.Second
	// shardStatusConc is how many Status reads run at once.
	shardStatusConc = 64
	// shardMaxTries bounds the search for a campaign ID whose sub-lines
	// spread evenly over the masters.
	shardMaxTries = 100_000
)

// ShardResult is the sharded-line section's run.
type ShardResult struct {
	Users, Stock, Conc, BatchSize int
	IntervalMs, LagMs             int64
	// Cores is the box's, shared by the masters and the load generator.
	Cores int
	// Masters are the Cluster's masters, in the order of their slots.
	Masters []string
	Runs    []ShardRun
}

// ShardRun is one sub-line count.
type ShardRun struct {
	SubLines int
	// Campaign is the ID picked: the first of hot-1, hot-2, ... (IDTries
	// tried) whose sub-lines' keys fall evenly on the masters; Slots are
	// the sub-lines' hash slots and PerMaster how many sub-lines each
	// master holds.
	Campaign  string
	IDTries   int
	Slots     []int
	PerMaster []int
	// BackgroundPerSec is the commands each master ran per second in the
	// half second before admission, while this run sent nothing: another
	// client's load, which the figures below would include.
	BackgroundPerSec []float64
	// The admission phase: distinct users admitted by Conc goroutines,
	// wall clock, and what each master counted meanwhile (INFO stats
	// total_commands_processed, Lua scripts' inner commands included; INFO
	// cpu used_cpu_user + used_cpu_sys).
	Admitted              int
	AdmitSec, AdmitPerSec float64
	MasterCommands        []int64
	MasterCPUSec          []float64
	// MasterAdmissions is how many of the users each master's sub-lines
	// took (shard.Of), MasterScripts the script calls (EVALSHA and EVAL,
	// INFO commandstats) each master ran: coalesced batches.
	MasterAdmissions []int
	MasterScripts    []int64
	// Position estimate: |Status position - true place| / true place over
	// PositionSamples users spread evenly over admission rank, the true
	// place being the rank the answers came back in.
	PositionSamples                int
	PositionErrP50, PositionErrP99 float64
	// The drain: from the scheduler's first move to the last issuance, and
	// to the line and flight empty (every admitted user decided); Redis CPU
	// per master over each (from just before the scheduler's start).
	DrainSec, SettleSec                   float64
	DrainMasterCPUSec, SettleMasterCPUSec []float64
	// The outcome: units the Store issued, users holding a unit, of them
	// those not holding exactly one, and Status of every admitted user.
	Issued                       int64
	Holders, HoldersNotOne       int
	StatusIssued, StatusRejected int
	// Rank displacement over the issued users in issue order i: |i -
	// admission rank|; late winners were admitted at rank >= the number
	// issued (someone admitted before them got nothing).
	DisplacementP50, DisplacementP99, DisplacementMax int
	LateWinners                                       int
}

// shardBusyPerSec is the background rate above which a master counts as
// used by someone else (this run's client sends nothing then; the
// Cluster's own gossip is not commands).
const shardBusyPerSec = 20

// busy names the masters someone else was using before admission, "" if
// none.
func (r ShardRun) busy() string {
	var parts []string
	for i, v := range r.BackgroundPerSec {
		if v > shardBusyPerSec {
			parts = append(parts, fmt.Sprintf("master %d: %.0f commands/s", i+1, v))
		}
	}
	return strings.Join(parts, ", ")
}

// CPUMicrosPerAdmission is the masters' CPU over the admission phase per
// admission.
func (r ShardRun) CPUMicrosPerAdmission() float64 {
	return microsPer(r.MasterCPUSec, int64(r.Admitted))
}

// microsPer is the masters' CPU seconds, summed, in microseconds per one
// of n (0 for none).
func microsPer(cpuSec []float64, n int64) float64 {
	if n == 0 {
		return 0
	}
	var s float64
	for _, c := range cpuSec {
		s += c
	}
	return s * 1e6 / float64(n)
}

// AdmissionsPerScript is the mean coalesced batch: admissions per
// admission script call.
func (r ShardRun) AdmissionsPerScript() float64 {
	var s int64
	for _, n := range r.MasterScripts {
		s += n
	}
	if s == 0 {
		return 0
	}
	return float64(r.Admitted) / float64(s)
}

// DrainCPUMicrosPerUnit is the masters' CPU from the scheduler's start to
// the last issuance, per unit issued.
func (r ShardRun) DrainCPUMicrosPerUnit() float64 { return microsPer(r.DrainMasterCPUSec, r.Issued) }

// shardMain runs the section alone (-shard-only) and prints it.
func shardMain() error {
	res, err := runShardSection(context.Background())
	if err != nil {
		return err
	}
	fmt.Print(shardMarkdown(Report{Shard: &res}))
	return nil
}

// runShardSection measures every -shard-lines count on the Cluster named by
// COUPONQ_REDIS_CLUSTER.
func runShardSection(ctx context.Context) (ShardResult, error) {
	res := ShardResult{Users: *shardUsers, Stock: *shardStock, Conc: *shardConc, BatchSize: shardBatch,
		IntervalMs: shardInterval.Milliseconds(), LagMs: shard.DefaultLag.Milliseconds(), Cores: numCPU()}
	lines, err := parseInts(*shardLines)
	if err != nil {
		return res, fmt.Errorf("bad -shard-lines: %w", err)
	}
	if res.Users <= 0 || res.Stock <= 0 || res.Conc <= 0 || res.Stock > res.Users {
		return res, fmt.Errorf("-shard-users, -shard-stock and -shard-conc must be > 0, stock at most users")
	}
	for _, n := range lines {
		if n > couponq.MaxShards {
			return res, fmt.Errorf("-shard-lines: %d is more than %d sub-lines", n, couponq.MaxShards)
		}
	}
	addrs := os.Getenv("COUPONQ_REDIS_CLUSTER")
	if addrs == "" {
		return res, errors.New("COUPONQ_REDIS_CLUSTER must be set: scripts/redis.sh start, then . .cache/servers/redis/env")
	}
	if err := raiseNofile(); err != nil {
		return res, err
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), PoolSize: res.Conc + 64})
	defer func() { _ = cc.Close() }()
	if err := cc.Ping(ctx).Err(); err != nil {
		return res, fmt.Errorf("redis cluster: %w", err)
	}
	layout, err := readLayout(ctx, cc)
	if err != nil {
		return res, err
	}
	defer layout.close()
	res.Masters = layout.addrs
	for _, n := range lines {
		progress("sharded line: %d sub-line(s), %d users, stock %d, %d admitting at once", n, res.Users, res.Stock, res.Conc)
		r, err := runShardLine(ctx, cc, layout, n, res)
		if err != nil {
			return res, fmt.Errorf("%d sub-lines: %w", n, err)
		}
		progress("   %s", shardLine(r))
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// clusterLayout is the Cluster's masters (a client to each, in slot order)
// and which master serves each slot range.
type clusterLayout struct {
	addrs   []string
	clients []*redis.Client
	ranges  []slotRange
}

type slotRange struct{ start, end, master int }

func readLayout(ctx context.Context, cc *redis.ClusterClient) (*clusterLayout, error) {
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return cmp.Compare(a.Start, b.Start) })
	l := &clusterLayout{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return nil, fmt.Errorf("cluster slots %d-%d: no node", s.Start, s.End)
		}
		m := slices.Index(l.addrs, s.Nodes[0].Addr)
		if m < 0 {
			m = len(l.addrs)
			l.addrs = append(l.addrs, s.Nodes[0].Addr)
			l.clients = append(l.clients, redis.NewClient(&redis.Options{Addr: s.Nodes[0].Addr}))
		}
		l.ranges = append(l.ranges, slotRange{s.Start, s.End, m})
	}
	return l, nil
}

func (l *clusterLayout) close() {
	for _, c := range l.clients {
		_ = c.Close()
	}
}

// masterOf returns the master serving slot, -1 if none does.
func (l *clusterLayout) masterOf(slot int) int {
	for _, r := range l.ranges {
		if slot >= r.start && slot <= r.end {
			return r.master
		}
	}
	return -1
}

// crc16 is Redis Cluster's key hash: CRC-16/XMODEM (polynomial 0x1021,
// initial value 0).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is the Cluster's hash slot of key: of its hash tag (what lies
// between the first '{' and the next '}', if not empty), else of the key.
func keySlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(crc16(key)) & 16383
}

// lineKeys returns a key of each line of a campaign of n sub-lines, as
// the Redis line names them: the campaign's own line for n <= 1.
func lineKeys(prefix, campaign string, n int) []string {
	if n <= 1 {
		return []string{redisline.KeysFor(prefix, campaign).Seq}
	}
	keys := make([]string, n)
	for k := range n {
		keys[k] = redisline.KeysFor(prefix, shard.SubLine(campaign, k)).Seq
	}
	return keys
}

// spread counts, per master, the keys' slots it serves.
func spread(keys []string, masters int, masterOf func(slot int) int) (slots, per []int) {
	per = make([]int, masters)
	for _, k := range keys {
		s := keySlot(k)
		slots = append(slots, s)
		if m := masterOf(s); m >= 0 {
			per[m]++
		}
	}
	return slots, per
}

// even tells whether n lines lie evenly on the masters: each holds
// floor(n/m) or ceil(n/m) of them.
func even(per []int, n int) bool {
	lo, hi := n/len(per), (n+len(per)-1)/len(per)
	sum := 0
	for _, c := range per {
		if c < lo || c > hi {
			return false
		}
		sum += c
	}
	return sum == n
}

// pickHotID returns the first of hot-1, hot-2, ... whose n lines' keys
// fall evenly on the masters, and how many it tried.
func pickHotID(prefix string, n, masters int, masterOf func(slot int) int) (id string, tries int, slots, per []int, err error) {
	for i := 1; i <= shardMaxTries; i++ {
		id = "hot-" + strconv.Itoa(i)
		slots, per = spread(lineKeys(prefix, id, n), masters, masterOf)
		if even(per, n) {
			return id, i, slots, per, nil
		}
	}
	return "", shardMaxTries, nil, nil, fmt.Errorf("no hot-1..hot-%d spreads %d lines evenly over %d masters", shardMaxTries, n, masters)
}

// masterStats is one master's INFO stats and cpu reading.
type masterStats struct {
	commands int64
	cpu      float64 // used_cpu_user + used_cpu_sys, seconds
	scripts  int64   // EVALSHA and EVAL calls
}

func (l *clusterLayout) stats(ctx context.Context) ([]masterStats, error) {
	out := make([]masterStats, len(l.clients))
	for i, c := range l.clients {
		info, err := c.Info(ctx, "stats", "cpu", "commandstats").Result()
		if err != nil {
			return nil, fmt.Errorf("INFO on %s: %w", l.addrs[i], err)
		}
		var seen int
		for _, line := range strings.Split(info, "\n") {
			name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				continue
			}
			switch name {
			case "total_commands_processed":
				out[i].commands, _ = strconv.ParseInt(v, 10, 64)
				seen++
			case "used_cpu_user", "used_cpu_sys":
				f, _ := strconv.ParseFloat(v, 64)
				out[i].cpu += f
				seen++
			case "cmdstat_evalsha", "cmdstat_eval":
				calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
				n, _ := strconv.ParseInt(calls, 10, 64)
				out[i].scripts += n
			}
		}
		if seen != 3 {
			return nil, fmt.Errorf("INFO on %s lacks total_commands_processed or used_cpu_*", l.addrs[i])
		}
	}
	return out, nil
}

// deltas returns, per master, the commands (the one INFO call of the
// first reading left out) and CPU seconds between two readings.
func deltas(s0, s1 []masterStats) (cmds []int64, cpu []float64, scripts []int64) {
	for i := range s0 {
		cmds = append(cmds, s1[i].commands-s0[i].commands-1)
		cpu = append(cpu, s1[i].cpu-s0[i].cpu)
		scripts = append(scripts, s1[i].scripts-s0[i].scripts)
	}
	return cmds, cpu, scripts
}

// purge deletes every key under prefix from every master.
func (l *clusterLayout) purge(prefix string) {
	ctx := context.Background()
	for _, c := range l.clients {
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		flush := func() {
			_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys { // one slot per key on a Cluster node
					p.Unlink(ctx, k)
				}
				return nil
			})
			keys = keys[:0]
		}
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				flush()
			}
		}
		flush()
	}
}

// shardUser is user i's ID; shardUserIndex reads i back.
func shardUser(i int) string { return "u" + strconv.Itoa(i) }

func shardUserIndex(u string) (int, bool) {
	i, err := strconv.Atoi(strings.TrimPrefix(u, "u"))
	return i, err == nil && strings.HasPrefix(u, "u")
}

// orderStore is the in-memory Store, remembering the order in which it
// issued users (each user's first issuance) and when it issued the last.
type orderStore struct {
	mu    sync.Mutex
	s     *memory.Store
	seen  map[string]bool
	order []int32
	last  time.Time
	bad   string // a user ID not of this section
}

func newOrderStore() *orderStore { return &orderStore{s: memory.NewStore(), seen: map[string]bool{}} }

// count is the memory Store's count of the campaign's units (it never fails).
func (o *orderStore) count(campaign string) int64 {
	n, _ := o.s.IssuedCount(context.Background(), campaign)
	return n
}

func (o *orderStore) note(user string, is couponq.Issuance) {
	if is.Outcome != couponq.Issued || o.seen[user] {
		return
	}
	o.seen[user] = true
	i, ok := shardUserIndex(user)
	if !ok {
		o.bad = user
		return
	}
	o.order = append(o.order, int32(i))
	o.last = time.Now()
}

func (o *orderStore) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	is, err := o.s.Issue(ctx, r)
	if err == nil {
		o.note(r.User, is)
	}
	return is, err
}

func (o *orderStore) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, err := o.s.IssueBatch(ctx, rs)
	if err == nil {
		for i, r := range rs {
			o.note(r.User, out[i])
		}
	}
	return out, err
}

func (o *orderStore) issued() (order []int32, last time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.order), o.last
}

var _ couponq.BatchStore = (*orderStore)(nil)

// runShardLine measures one sub-line count under a fresh key prefix,
// deleted after.
func runShardLine(ctx context.Context, cc *redis.ClusterClient, l *clusterLayout, n int, p ShardResult) (ShardRun, error) {
	r := ShardRun{SubLines: n}
	prefix := fmt.Sprintf("benchshard%d-%d", time.Now().UnixNano(), n)
	defer l.purge(prefix)

	// The campaign, its sub-lines spread evenly over the masters.
	var err error
	if r.Campaign, r.IDTries, r.Slots, r.PerMaster, err = pickHotID(prefix, n, len(l.addrs), l.masterOf); err != nil {
		return r, err
	}
	for i, key := range lineKeys(prefix, r.Campaign, n) {
		s, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			return r, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		if int(s) != r.Slots[i] {
			return r, fmt.Errorf("slot of %s: computed %d, the server says %d", key, r.Slots[i], s)
		}
	}
	c := couponq.Campaign{ID: r.Campaign, Stock: int64(p.Stock), BatchSize: shardBatch, Interval: shardInterval}
	if n > 1 {
		c.Shards = n
	}
	cat, err := memline.NewRegistry(c)
	if err != nil {
		return r, err
	}
	rq, err := redisline.New(redisline.Config{Client: cc, Prefix: prefix})
	if err != nil {
		return r, err
	}
	sq, err := shard.New(shard.Config{Queue: rq, Catalog: cat})
	if err != nil {
		return r, err
	}
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: sq})
	if err != nil {
		return r, err
	}

	// Anyone else using the Cluster?
	b0, err := l.stats(ctx)
	if err != nil {
		return r, err
	}
	bAt := time.Now()
	time.Sleep(500 * time.Millisecond)
	s0, err := l.stats(ctx)
	if err != nil {
		return r, err
	}
	bCmds, _, _ := deltas(b0, s0)
	for _, c := range bCmds {
		r.BackgroundPerSec = append(r.BackgroundPerSec, float64(c)/time.Since(bAt).Seconds())
	}
	if busy := r.busy(); busy != "" {
		progress("   warning: other clients are using the Cluster (%s); the figures include their load", busy)
	}

	// Admission: rank[i] is the order user i's answer came back in.
	rank := make([]int32, p.Users)
	var next, answered atomic.Int64
	var failed atomic.Int64
	var firstErr firstError
	start := time.Now()
	var wg sync.WaitGroup
	for range p.Conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(p.Users) {
					return
				}
				_, err := svc.Admit(ctx, couponq.Request{Campaign: c.ID, User: shardUser(int(i))})
				rank[i] = int32(answered.Add(1) - 1)
				if err != nil {
					failed.Add(1)
					firstErr.set(err)
				}
			}
		})
	}
	wg.Wait()
	r.AdmitSec = time.Since(start).Seconds()
	s1, err := l.stats(ctx)
	if err != nil {
		return r, err
	}
	if f := failed.Load(); f > 0 {
		return r, fmt.Errorf("%d admissions failed, the first: %w", f, firstErr.get())
	}
	r.Admitted = p.Users
	r.AdmitPerSec = float64(r.Admitted) / r.AdmitSec
	r.MasterCommands, r.MasterCPUSec, r.MasterScripts = deltas(s0, s1)
	r.MasterAdmissions = make([]int, len(l.addrs))
	for i := range p.Users {
		if m := l.masterOf(r.Slots[shard.Of(shardUser(i), max(n, 1))]); m >= 0 {
			r.MasterAdmissions[m]++
		}
	}
	byRank := make([]int32, p.Users)
	for i, rk := range rank {
		byRank[rk] = int32(i)
	}

	// Positions: sampled users' Status against their true place.
	ranks := sampleRanks(p.Users, shardSamples)
	errs := make([]float64, len(ranks))
	if err := parallel(ctx, len(ranks), shardStatusConc, func(j int) error {
		st, err := svc.Status(ctx, c.ID, shardUser(int(byRank[ranks[j]])))
		if err != nil {
			return err
		}
		if st.State != couponq.StateWaiting {
			return fmt.Errorf("user %d: %s before the drain", byRank[ranks[j]], st.State)
		}
		errs[j] = relErr(st.Position, int64(ranks[j])+1)
		return nil
	}); err != nil {
		return r, fmt.Errorf("status: %w", err)
	}
	slices.Sort(errs)
	r.PositionSamples = len(errs)
	r.PositionErrP50, r.PositionErrP99 = percentile(errs, 0.50), percentile(errs, 0.99)

	// The drain: a scheduler of the campaign's own → in-memory transport
	// (one worker: dispatch order) → issuer (batch path) → the
	// order-keeping Store. Its first move comes one Interval after its
	// start; the drain's times run from that move.
	store := newOrderStore()
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	if err != nil {
		return r, err
	}
	iss, err := issuing.New(issuing.Config{Consumer: transport, Store: store, Catalog: cat, Recorder: sq})
	if err != nil {
		return r, err
	}
	th, err := newMover(c, sq, transport, lock.NewMemory(), nil)
	if err != nil {
		return r, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	d0, err := l.stats(ctx)
	if err != nil {
		return r, err
	}
	if err := iss.Start(runCtx); err != nil {
		return r, err
	}
	defer func() { _ = iss.Stop(context.Background()) }()
	if err := th.Start(runCtx); err != nil {
		return r, err
	}
	defer func() { _ = th.Stop(context.Background()) }()
	deadline := time.Now().Add(shardDrainTimeout)
	var dLast []masterStats // at the first poll that saw the stock issued
	for {
		done := store.count(c.ID) >= int64(p.Stock)
		if done && dLast == nil {
			if dLast, err = l.stats(ctx); err != nil {
				return r, err
			}
		}
		ls, err := sq.LineStats(ctx, c.ID)
		if err == nil && done && ls.Waiting == 0 && ls.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("not drained after %s: issued %d of %d, line %+v (%v)", shardDrainTimeout, store.count(c.ID), p.Stock, ls, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first, ok := th.firstMove()
	if !ok {
		return r, errors.New("drained without a move")
	}
	r.SettleSec = time.Since(first).Seconds()
	d1, err := l.stats(ctx)
	if err != nil {
		return r, err
	}
	_, r.DrainMasterCPUSec, _ = deltas(d0, dLast)
	_, r.SettleMasterCPUSec, _ = deltas(d0, d1)
	// Every admitted user decided: read each one's Status, again for those
	// not yet final, until the deadline.
	pending := make([]int32, p.Users)
	for i := range pending {
		pending[i] = int32(i)
	}
	for len(pending) > 0 {
		states := make([]couponq.State, len(pending))
		if err := parallel(ctx, len(pending), shardStatusConc, func(j int) error {
			st, err := svc.Status(ctx, c.ID, shardUser(int(pending[j])))
			states[j] = st.State
			return err
		}); err != nil {
			return r, fmt.Errorf("final status: %w", err)
		}
		var left []int32
		for j, s := range states {
			switch s {
			case couponq.StateIssued:
				r.StatusIssued++
			case couponq.StateRejected:
				r.StatusRejected++
			default:
				left = append(left, pending[j])
			}
		}
		if pending = left; len(pending) > 0 {
			if time.Now().After(deadline) {
				return r, fmt.Errorf("after %s, %d users still not decided (user %d: %s)", shardDrainTimeout, len(pending), pending[0], states[0])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stop()

	order, last := store.issued()
	if store.bad != "" {
		return r, fmt.Errorf("the Store issued to %q, not a user of this run", store.bad)
	}
	r.DrainSec = last.Sub(first).Seconds()
	r.Issued = store.count(c.ID)
	holders := store.s.Holders(c.ID)
	r.Holders = len(holders)
	for _, h := range holders {
		if h != 1 {
			r.HoldersNotOne++
		}
	}
	r.DisplacementP50, r.DisplacementP99, r.DisplacementMax, r.LateWinners = displacement(order, rank)
	if r.Issued != int64(p.Stock) || r.HoldersNotOne > 0 || r.Holders != p.Stock || len(order) != p.Stock {
		return r, fmt.Errorf("issued %d of stock %d to %d holders (%d not holding exactly one; %d in issue order)",
			r.Issued, p.Stock, r.Holders, r.HoldersNotOne, len(order))
	}
	return r, nil
}

// parallel runs f(0..n-1) on conc goroutines and returns the first error.
func parallel(ctx context.Context, n, conc int, f func(i int) error) error {
	var next atomic.Int64
	var first firstError
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || first.get() != nil || ctx.Err() != nil {
					return
				}
				if err := f(int(i)); err != nil {
					first.set(err)
				}
			}
		})
	}
	wg.Wait()
	if err := first.get(); err != nil {
		return err
	}
	return ctx.Err()
}

// firstError keeps the first error set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (e *firstError) set(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

func (e *firstError) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// sampleRanks returns k ranks (0-based) spread evenly over n: the middle
// of each of k equal slices.
func sampleRanks(n, k int) []int {
	k = min(k, n)
	out := make([]int, k)
	for j := range k {
		out[j] = int((int64(2*j+1) * int64(n)) / int64(2*k))
	}
	return out
}

// relErr is |est - truth| / truth.
func relErr(est, truth int64) float64 {
	if truth <= 0 {
		return math.Inf(1)
	}
	return math.Abs(float64(est-truth)) / float64(truth)
}

// percentile is the nearest-rank p-quantile (0 < p <= 1) of sorted; the
// zero value for none.
func percentile[T cmp.Ordered](sorted []T, p float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// displacement compares the issue order with admission: order[i] is the
// user issued i-th, rank[u] user u's admission rank. It returns the
// median, 99th percentile and largest |i - rank|, and how many issued
// users had a rank of len(order) or more (late winners: someone admitted
// before them got nothing).
func displacement(order, rank []int32) (p50, p99, most, late int) {
	ds := make([]int, len(order))
	for i, u := range order {
		rk := int(rank[u])
		ds[i] = max(i-rk, rk-i)
		if rk >= len(order) {
			late++
		}
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		most = ds[len(ds)-1]
	}
	return percentile(ds, 0.50), percentile(ds, 0.99), most, late
}
