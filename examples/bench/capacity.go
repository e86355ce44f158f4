package main

// The capacity model (CAPACITY.md): per-operation CPU costs measured in
// this invocation (the calibration), a closed-form model built on them,
// predictions for configurations of this box checked against runs made
// right after predicting, and the extrapolation to a crowd.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	capacityOnly = flag.Bool("capacity-only", false, "measure only the capacity model's calibration (component runs) and its checks, and write -capacity-md (merging \"Capacity\" into -out's results.json if there is one); the full run does it too")
	capacityMD   = flag.String("capacity-md", "CAPACITY.md", "capacity model: the report to write")
	capConns     = flag.Int("capacity-conns", 1000, "capacity model: the connections of the calibration and check HTTP runs")
	// The crowd the model extrapolates to.
	capArrivals  = flag.Int("crowd-arrivals", 300_000, "capacity model, crowd: people arriving")
	capWindow    = flag.Duration("crowd-window", 10*time.Second, "capacity model, crowd: over this time, evenly")
	capStock     = flag.Int("crowd-stock", 100_000, "capacity model, crowd: the campaign's stock")
	capDrain     = flag.Float64("crowd-drain", 10_000, "capacity model, crowd: the drain rate (BatchSize per Interval), units/s")
	capStreams   = flag.Float64("crowd-streams", 1, "capacity model, crowd: the share of waiting users with the waiting-room page (a status stream) open")
	capAPICores  = flag.Int("crowd-api-cores", 32, "capacity model: the API fleet's cores")
	capMasters   = flag.Int("crowd-masters", 6, "capacity model: the Redis Cluster's masters (the hot campaign has as many sub-lines)")
	capProcCores = flag.Int("crowd-process-cores", 4, "capacity model: cores of one API process")
	capHeadroom  = flag.Float64("crowd-headroom", 0.7, "capacity model: plan every core to at most this share busy")
)

// OpCost is one HTTP operation's CPU per request, µs, from one run.
type OpCost struct {
	Scenario             string
	Conns                int
	RPS                  float64
	API, Redis, Kafka    float64 // Kafka -1: not measured
	Load                 float64 // wrk's
	PerScript, CmdsPerOp float64
	RedisMasters         []float64 `json:",omitempty"` // per master, if more than one
}

func opCost(r HTTPResult) OpCost {
	c := OpCost{Scenario: r.Scenario, Conns: r.Conns, RPS: r.RPS, API: r.ServerMicros(), Redis: r.RedisMicros(),
		Kafka: r.KafkaMicros(), Load: r.LoadMicros(), PerScript: r.AdmissionsPerScript()}
	if r.Requests > 0 {
		c.CmdsPerOp = float64(r.RedisCommands) / float64(r.Requests)
	}
	if len(r.RedisMasterCPUSec) > 1 {
		for _, s := range r.RedisMasterCPUSec {
			c.RedisMasters = append(c.RedisMasters, micros(s, r.Requests))
		}
	}
	return c
}

// ClusterCost is the Redis Cluster's CPU per admission of one hot campaign
// over SubLines sub-lines, from the sharded-line section's Go API run (no
// HTTP): per master and summed, µs.
type ClusterCost struct {
	SubLines     int
	PerMaster    []float64
	Total        float64
	PerScript    float64
	AdmitPerSec  float64
	DrainPerUnit float64 // the masters' CPU per unit drained, µs
}

func clusterCost(r ShardRun) ClusterCost {
	c := ClusterCost{SubLines: r.SubLines, Total: r.CPUMicrosPerAdmission(), PerScript: r.AdmissionsPerScript(),
		AdmitPerSec: r.AdmitPerSec, DrainPerUnit: r.DrainCPUMicrosPerUnit()}
	for _, s := range r.MasterCPUSec {
		c.PerMaster = append(c.PerMaster, micros(s, int64(r.Admitted)))
	}
	return c
}

// DrainCost is one issued unit's CPU, µs, and Store calls, from an
// end-to-end run.
type DrainCost struct {
	Variant                           string
	UnitsPerSec                       float64
	Worker, Redis, Kafka, Postgres    float64
	StoreCallsPerUnit, EntriesPerCall float64
}

func drainCost(e E2EResult) DrainCost {
	return DrainCost{Variant: e.Variant, UnitsPerSec: e.SteadyIssuedPerSec, Worker: e.WorkerMicros(), Redis: e.RedisMicros(),
		Kafka: e.KafkaMicros(), Postgres: e.PostgresMicros(), StoreCallsPerUnit: e.StoreCallsPerUnit(), EntriesPerCall: e.EntriesPerStoreCall()}
}

// StreamCost is an open status stream's CPU per second, µs, from the
// waiting-room section, at its drain rate.
type StreamCost struct {
	Streams                       int
	DrainPerSec                   float64
	API, Redis, Client            float64
	CommandsPerStreamSecond       float64
	EventsPerStreamSecond         float64
	StatusPerSec, LineStatsPerSec float64
}

func streamCost(s SSEResult) StreamCost {
	open := float64(s.OpenAtHoldStart+s.OpenAtHoldEnd) / 2
	return StreamCost{Streams: s.Streams, DrainPerSec: float64(s.BatchSize) * 1000 / float64(max(s.IntervalMs, 1)),
		API: s.ServerMicrosPerStreamSecond(), Redis: s.RedisMicrosPerStreamSecond(), Client: s.ClientMicrosPerStreamSecond(),
		CommandsPerStreamSecond: s.CommandsPerStreamSecond(), EventsPerStreamSecond: s.EventsPerSec / max(open, 1),
		StatusPerSec: s.HoldStatusPerSec, LineStatsPerSec: s.HoldLineStatsPerSec}
}

// Calibration is the costs per operation the model uses, all measured in
// one invocation of the bench.
type Calibration struct {
	Source                   string
	Noop, V2, V1, StatusPoll OpCost
	// V2U is V2 uncoalesced: one script call per admission, the cost at a
	// batch of 1; with V2's it splits each cost into a part per script
	// call and a part per admission (splitBatch).
	V2U OpCost
	// RoundTripMs is V2's p50 at one connection: a whole request, an upper
	// bound of one script call's round trip, for the batch the plan's
	// admissions coalesce into (0: not measured; the plan takes a batch of 1).
	RoundTripMs float64
	// Usable is the share of the box's cores the measured processes reached
	// in the no-op run, which saturates it (the rest: the kernel's work
	// charged to no process, and anything else running): the cores the
	// checks' predictions share out.
	Usable      float64
	Cluster     ClusterCost  // the sub-lines the check uses (3)
	ClusterWide *ClusterCost `json:",omitempty"` // the most sub-lines measured, for the extrapolation
	Drain       DrainCost
	Stream      StreamCost
}

// ProcCost is one process's CPU per operation in a prediction, µs; Single
// marks a single-threaded one (a Redis master: one core at most).
type ProcCost struct {
	Proc   string
	Micros float64
	Single bool
}

// predictThroughput is the closed form: the rate at which the first
// resource saturates, the box's cores shared by every process (cores ×
// 10⁶ / Σ µs) or a single-threaded process's one core (10⁶ / its µs), and
// which it is.
func predictThroughput(costs []ProcCost, cores float64) (x float64, bound string) {
	var sum float64
	for _, c := range costs {
		sum += c.Micros
	}
	if sum <= 0 {
		return 0, "nothing"
	}
	x, bound = cores*1e6/sum, fmt.Sprintf("the box's %.2f usable cores", cores)
	for _, c := range costs {
		if c.Single && c.Micros > 0 && 1e6/c.Micros < x {
			x, bound = 1e6/c.Micros, c.Proc+" (one core)"
		}
	}
	return x, bound
}

// shareOf is a process's CPU share of the box at rate x: µs × x / 10⁶ /
// cores.
func shareOf(micros, x, cores float64) float64 { return micros * x / 1e6 / cores }

// CapacityCheck is one configuration of this box: predicted from the
// calibration, then run.
type CapacityCheck struct {
	Name, Scenario  string
	Conns, Shards   int
	Cluster         bool
	Costs           []ProcCost
	PredictedRPS    float64
	Bound           string
	PredictedShares []float64 // per Costs, of the box
	MeasuredRPS     float64
	MeasuredShares  []float64 // per Costs, of the box
	MeasuredBusy    float64   // the measured processes' share of the box
	Run             HTTPResult
}

// ErrPct is the prediction's error, % of the measured throughput.
func (c CapacityCheck) ErrPct() float64 {
	if c.MeasuredRPS == 0 {
		return 0
	}
	return 100 * (c.PredictedRPS - c.MeasuredRPS) / c.MeasuredRPS
}

// measuredShares is each of costs' processes' share of the box in r.
func measuredShares(costs []ProcCost, r HTTPResult, cores float64) []float64 {
	out := make([]float64, len(costs))
	if r.CPUWallSec == 0 {
		return out
	}
	div := r.CPUWallSec * cores
	master := 0
	for i, c := range costs {
		switch {
		case c.Proc == "api":
			out[i] = r.ServerCPUSec / div
		case c.Proc == "Redis":
			out[i] = r.RedisCPUSec / div
		case strings.HasPrefix(c.Proc, "Redis master"):
			if master < len(r.RedisMasterCPUSec) {
				out[i] = r.RedisMasterCPUSec[master] / div
			}
			master++
		case c.Proc == "Kafka":
			out[i] = max(r.KafkaCPUSec, 0) / div
		case c.Proc == "wrk":
			out[i] = r.LoadCPUSec / div
		}
	}
	return out
}

// checkCosts is the processes' costs for each check, from the
// calibration: a V2 line on the standalone Redis (the V2 HTTP run's
// costs), V2 over sub-lines on the Cluster (the V2 run's api and wrk
// costs, the Cluster's per-master Redis costs from the Go API run), and V1
// per-user lock (its HTTP run's, with the Kafka broker).
func checkCosts(cal Calibration) []CapacityCheck {
	one := CapacityCheck{Name: "V2, one line, standalone Redis", Scenario: "v2", Conns: cal.V2.Conns,
		Costs: []ProcCost{{"api", cal.V2.API, false}, {"Redis", cal.V2.Redis, true}, {"wrk", cal.V2.Load, false}}}
	cl := CapacityCheck{Name: fmt.Sprintf("V2, %d sub-lines, %d-master Cluster", cal.Cluster.SubLines, len(cal.Cluster.PerMaster)),
		Scenario: "v2", Conns: cal.V2.Conns, Cluster: true, Shards: cal.Cluster.SubLines,
		Costs: []ProcCost{{"api", cal.V2.API, false}}}
	for i, m := range cal.Cluster.PerMaster {
		cl.Costs = append(cl.Costs, ProcCost{fmt.Sprintf("Redis master %d", i+1), m, true})
	}
	cl.Costs = append(cl.Costs, ProcCost{"wrk", cal.V2.Load, false})
	v1 := CapacityCheck{Name: "V1, per-user lock, standalone Redis", Scenario: "v1-user-lock", Conns: cal.V1.Conns,
		Costs: []ProcCost{{"api", cal.V1.API, false}, {"Redis", cal.V1.Redis, true}, {"Kafka", max(cal.V1.Kafka, 0), false}, {"wrk", cal.V1.Load, false}}}
	return []CapacityCheck{one, cl, v1}
}

// predict fills in the check's prediction for a box of cores, of which
// the share usable is the processes' to share.
func (c *CapacityCheck) predict(cores, usable float64) {
	if usable <= 0 || usable > 1 {
		usable = 1
	}
	c.PredictedRPS, c.Bound = predictThroughput(c.Costs, cores*usable)
	c.PredictedShares = make([]float64, len(c.Costs))
	for i, p := range c.Costs {
		c.PredictedShares[i] = shareOf(p.Micros, c.PredictedRPS, cores)
	}
}

// measure fills in what the check's run measured.
func (c *CapacityCheck) measure(r HTTPResult, cores float64) {
	c.Run, c.MeasuredRPS = r, r.RPS
	c.MeasuredShares = measuredShares(c.Costs, r, cores)
	c.MeasuredBusy = r.BoxBusy(int(cores))
}

// errorFactors splits the prediction's ratio to the measured throughput
// into the cost per request's drift (measured over calibrated, the costs'
// processes summed) and the idle factor (usable share over the run's busy
// share): their product when the box binds.
func (c CapacityCheck) errorFactors(usable float64) (cost, idle, calSum, measSum float64) {
	for _, p := range c.Costs {
		calSum += p.Micros
	}
	r := c.Run
	measSum = r.ServerMicros() + r.RedisMicros() + max(r.KafkaMicros(), 0) + r.LoadMicros()
	if calSum > 0 {
		cost = measSum / calSum
	}
	if c.MeasuredBusy > 0 {
		idle = usable / c.MeasuredBusy
	}
	return cost, idle, calSum, measSum
}

// Crowd is what the model extrapolates to.
type Crowd struct {
	Arrivals          int
	WindowSec         float64
	Stock             int
	DrainPerSec       float64
	StreamShare       float64
	APICores, Masters int
	ProcessCores      int
	Headroom          float64
}

// Resource is one resource's load in the plan: CPU µs per second, split
// into what grows with arrivals (PerArrival µs per arrival/s, streams
// included) and what does not (Fixed); its capacity in cores.
type Resource struct {
	Name                string
	MicrosPerSec, Cores float64
	Capacity            float64 // cores available
	PerArrival, Fixed   float64
	Terms               []Term
}

// Term is one line of a resource's arithmetic.
type Term struct {
	What   string
	Rate   float64 // operations per second
	Unit   string
	Micros float64 // µs each
}

// Util is the resource's share busy.
func (r Resource) Util() float64 {
	if r.Capacity == 0 {
		return 0
	}
	return r.Cores / r.Capacity
}

// SaturationArrivals is the arrivals/s at which the resource is fully
// busy, other loads as planned.
func (r Resource) SaturationArrivals() float64 {
	if r.PerArrival <= 0 {
		return math.Inf(1)
	}
	return (r.Capacity*1e6 - r.Fixed) / r.PerArrival
}

// Plan is the model's answer for a crowd.
type Plan struct {
	Crowd                  Crowd
	ArrivalsPerSec         float64
	PeakSec                float64 // when the line is longest: the window's end, or the sell-out
	Waiting, Streams       float64
	API, Redis, Worker, PG Resource
	APIProcesses           int     // of ProcessCores, at Headroom
	MastersNeeded          int     // at Headroom
	PerMasterCores         float64 // the Cluster's load per master (even spread)
	First                  string  // which saturates first
	StoreUnitsPerSec       float64
	StoreCallsPerSec       float64
	SellOutSec             float64
	PollInstead            float64 // API + Redis cores, had the waiting users polled once a second
	// The coalescing: queues (API processes × sub-lines), the admissions a
	// script call carries, and the costs split per script call and per
	// admission (µs).
	Queues, Batch       float64
	APICall, APIAdm     float64
	RedisCall, RedisAdm float64
}

// splitBatch splits a cost per admission measured at a batch of 1 (u) and
// at a mean batch of b admissions a script call (c) into a part per call
// and a part per admission: u = call + adm, c = call / b + adm. A batch of
// at most 1, or a batch that cost more, leaves it all per admission (c).
func splitBatch(u, c, b float64) (call, adm float64) {
	if b <= 1 || u <= c {
		return 0, c
	}
	call = (u - c) / (1 - 1/b)
	return call, u - call
}

// coalescedBatch is the mean admissions a script call carries when a
// queue takes lambda admissions a second and a call takes rtt seconds:
// the one that starts a call, plus those that arrive meanwhile; 1 if rtt
// is not known.
func coalescedBatch(lambda, rtt float64) float64 {
	if rtt <= 0 || lambda <= 0 {
		return 1
	}
	return 1 + lambda*rtt
}

// plan applies the model to a crowd: pure arithmetic on the calibration.
func plan(cal Calibration, cr Crowd) Plan {
	p := Plan{Crowd: cr, ArrivalsPerSec: float64(cr.Arrivals) / cr.WindowSec}
	a, d := p.ArrivalsPerSec, cr.DrainPerSec
	p.SellOutSec = math.Inf(1)
	if d > 0 {
		p.SellOutSec = float64(cr.Stock) / d
	}
	p.PeakSec = min(cr.WindowSec, p.SellOutSec)
	// The line grows at arrivals less drain until the window ends or the stock runs out.
	p.Waiting = max(a-d, 0) * p.PeakSec
	p.Streams = p.Waiting * cr.StreamShare
	streamsPerArrival := max(a-d, 0) * p.PeakSec * cr.StreamShare / a // streams grow with arrivals
	status := cal.StatusPoll
	// Coalescing: each API process coalesces its own admissions per
	// sub-line, so a queue sees a / (processes × sub-lines) a second, and a
	// call carries those that arrive while the one before is on its way.
	procs := math.Ceil(float64(cr.APICores) / float64(max(cr.ProcessCores, 1)))
	p.Queues = procs * float64(max(cr.Masters, 1))
	p.Batch = coalescedBatch(a/p.Queues, cal.RoundTripMs/1e3)
	p.APICall, p.APIAdm = splitBatch(cal.V2U.API, cal.V2.API, cal.V2.PerScript)
	p.RedisCall, p.RedisAdm = splitBatch(cal.V2U.Redis, cal.V2.Redis, cal.V2.PerScript)
	apiAdm, redisAdm := p.APIAdm+p.APICall/p.Batch, p.RedisAdm+p.RedisCall/p.Batch
	// The API fleet: an admission and a page load (one Status read) per
	// arrival, and every open stream.
	p.API = Resource{Name: "API fleet", Capacity: float64(cr.APICores), Terms: []Term{
		{fmt.Sprintf("admissions (V2, %.2f a script call)", p.Batch), a, "/s", apiAdm},
		{"waiting-room page loads (one Status read each, as a status poll)", a, "/s", status.API},
		{"open status streams", p.Streams, "stream-s/s", cal.Stream.API},
	}}
	p.API.PerArrival = apiAdm + status.API + streamsPerArrival*cal.Stream.API
	// Redis: admissions on the sharded line, the page loads' Status reads,
	// the drain (lease, record) and the streams' reads of users who leave
	// (one Status each) and LineStats (one per API process per poll).
	p.Redis = Resource{Name: "Redis Cluster", Capacity: float64(cr.Masters), Terms: []Term{
		{fmt.Sprintf("admissions (%.2f a script call)", p.Batch), a, "/s", redisAdm},
		{"page loads' Status reads", a, "/s", status.Redis},
		{"drain: lease and record, per unit", d, "units/s", cal.Drain.Redis},
		{"streams: Status read of each user leaving the line", d, "/s", status.Redis},
		{"streams: LineStats, one per API process a second (≤ a Status read)", procs, "/s", status.Redis},
	}}
	p.Redis.PerArrival = redisAdm + status.Redis
	p.Redis.Fixed = d*(cal.Drain.Redis+status.Redis) + procs*status.Redis
	p.Worker = Resource{Name: "workers (scheduler, Kafka client, issuer)", Terms: []Term{{"drained units", d, "units/s", cal.Drain.Worker}}}
	p.Worker.Fixed = d * cal.Drain.Worker
	p.PG = Resource{Name: "Store (Postgres)", Terms: []Term{{"drained units", d, "units/s", max(cal.Drain.Postgres, 0)}}}
	p.PG.Fixed = d * max(cal.Drain.Postgres, 0)
	for _, r := range []*Resource{&p.API, &p.Redis, &p.Worker, &p.PG} {
		for _, t := range r.Terms {
			r.MicrosPerSec += t.Rate * t.Micros
		}
		r.Cores = r.MicrosPerSec / 1e6
	}
	p.APIProcesses = int(math.Ceil(p.API.Cores / (float64(cr.ProcessCores) * cr.Headroom)))
	p.MastersNeeded = int(math.Ceil(p.Redis.Cores / cr.Headroom))
	p.PerMasterCores = p.Redis.Cores / float64(max(cr.Masters, 1))
	p.First = p.API.Name
	if p.Redis.SaturationArrivals() < p.API.SaturationArrivals() {
		p.First = p.Redis.Name
	}
	p.StoreUnitsPerSec = d
	p.StoreCallsPerSec = d * cal.Drain.StoreCallsPerUnit
	p.PollInstead = p.Waiting * (status.API + status.Redis) / 1e6
	return p
}

// CapacityResult is the capacity model's run.
type CapacityResult struct {
	Started     time.Time
	Cores       int
	Calibration Calibration
	Checks      []CapacityCheck
	Plan        Plan
}

// calibrationFrom takes the costs from a run's sections; an error names
// what is missing.
func calibrationFrom(rep Report, conns int, source string) (Calibration, error) {
	cal := Calibration{Source: source}
	for sc, dst := range map[string]*OpCost{"noop": &cal.Noop, "v2": &cal.V2, "v2-uncoalesced": &cal.V2U, "v1-user-lock": &cal.V1} {
		r, ok := find(rep, sc, conns)
		if !ok || !r.HasCPU() {
			return cal, fmt.Errorf("no %s run with CPU at %d connections", sc, conns)
		}
		*dst = opCost(r)
		if sc == "noop" {
			cal.Usable = r.BoxBusy(rep.Machine.Cores)
		}
	}
	if one, ok := find(rep, "v2", 1); ok {
		cal.RoundTripMs = one.P50ms
	}
	if rep.StatusPoll == nil || !rep.StatusPoll.HasCPU() {
		return cal, errors.New("no status poll run")
	}
	cal.StatusPoll = opCost(*rep.StatusPoll)
	if rep.Shard == nil {
		return cal, errors.New("no sharded-line run")
	}
	var found bool
	for _, r := range rep.Shard.Runs {
		if r.SubLines == 3 {
			cal.Cluster, found = clusterCost(r), true
		}
	}
	if !found {
		return cal, errors.New("no sharded-line run with 3 sub-lines")
	}
	wide := rep.Shard.Runs[len(rep.Shard.Runs)-1]
	for _, r := range rep.Shard.Runs {
		if r.SubLines > wide.SubLines {
			wide = r
		}
	}
	if wide.SubLines > 3 {
		c := clusterCost(wide)
		cal.ClusterWide = &c
	}
	found = false
	for _, e := range rep.E2E {
		if e.Variant == capacityE2E.Name && e.HasCPU() {
			cal.Drain, found = drainCost(e), true
		}
	}
	if !found {
		return cal, fmt.Errorf("no end-to-end %q run with CPU", capacityE2E.Name)
	}
	if rep.SSE == nil || !rep.SSE.HasCPU() {
		return cal, errors.New("no status-stream run with CPU")
	}
	cal.Stream = streamCost(*rep.SSE)
	return cal, nil
}

// capacityE2E is the end-to-end variant whose units the model drains:
// the Postgres Store, batched.
var capacityE2E = e2eVariants[4]

func crowdFromFlags() Crowd {
	return Crowd{Arrivals: *capArrivals, WindowSec: capWindow.Seconds(), Stock: *capStock, DrainPerSec: *capDrain,
		StreamShare: *capStreams, APICores: *capAPICores, Masters: *capMasters, ProcessCores: *capProcCores, Headroom: *capHeadroom}
}

// runCapacity predicts each check from the calibration, prints the
// prediction, then runs it; and plans the crowd.
func (b *backends) runCapacity(ctx context.Context, cal Calibration) (CapacityResult, error) {
	res := CapacityResult{Started: time.Now().UTC(), Cores: numCPU(), Calibration: cal}
	cores := float64(res.Cores)
	addrs := os.Getenv("COUPONQ_REDIS_CLUSTER")
	if addrs == "" {
		return res, errors.New("COUPONQ_REDIS_CLUSTER must be set: run scripts/bench.sh")
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), PoolSize: 1100})
	defer func() { _ = cc.Close() }()
	layout, err := readLayout(ctx, cc)
	if err != nil {
		return res, err
	}
	defer layout.close()
	// Every prediction first, then the runs.
	checks := checkCosts(cal)
	for i := range checks {
		c := &checks[i]
		c.predict(cores, cal.Usable)
		shares := make([]string, len(c.Costs))
		for j, p := range c.Costs {
			shares[j] = fmt.Sprintf("%s %s", p.Proc, pct(c.PredictedShares[j]))
		}
		progress("capacity check %s: predicted %.0f req/s (bound: %s), CPU shares %s", c.Name, c.PredictedRPS, c.Bound, strings.Join(shares, ", "))
	}
	for _, c := range checks {
		progress("capacity check %s: running it", c.Name)
		spec := httpSpec{sc: c.Scenario, conns: c.Conns}
		if c.Cluster {
			if len(layout.addrs) != len(cal.Cluster.PerMaster) {
				return res, fmt.Errorf("the Cluster has %d masters, the calibration %d", len(layout.addrs), len(cal.Cluster.PerMaster))
			}
			spec.cluster, spec.shards = &clusterTarget{cc: cc, layout: layout}, c.Shards
		}
		r, err := b.runHTTPSpec(ctx, spec)
		if err != nil {
			return res, fmt.Errorf("capacity check %s: %w", c.Name, err)
		}
		c.measure(r, cores)
		progress("   measured %.0f req/s (%+.0f%% off), box busy %.0f%%", c.MeasuredRPS, -100*(c.MeasuredRPS-c.PredictedRPS)/c.MeasuredRPS, 100*c.MeasuredBusy)
		res.Checks = append(res.Checks, c)
	}
	res.Plan = plan(cal, crowdFromFlags())
	return res, nil
}

// capacityMain is -capacity-only: the calibration's component runs, then
// the checks; writes -capacity-md and merges "Capacity" into -out's
// results.json if there is one.
func capacityMain(ctx context.Context, b *backends, o options) error {
	rep := Report{Machine: machine()}
	c := *capConns
	for _, run := range []struct {
		sc    string
		conns int
	}{{"noop", c}, {"v2", c}, {"v2-uncoalesced", c}, {"v1-user-lock", c}, {"v2", 1}} {
		progress("capacity calibration: http %s, %d connections, %s", run.sc, run.conns, o.duration)
		r, err := b.runHTTP(ctx, run.sc, run.conns)
		if err != nil {
			return err
		}
		progress("   %s", cpuLine(r))
		rep.HTTP = append(rep.HTTP, r)
	}
	progress("capacity calibration: status poll, %d connections, %d waiting users", c, statusPollUsers)
	sp, err := b.runHTTP(ctx, statusPollScenario, c)
	if err != nil {
		return err
	}
	progress("   %s", cpuLine(sp))
	rep.StatusPoll = &sp
	progress("capacity calibration: sharded line on the Cluster, Go API")
	sh, err := runShardSection(ctx)
	if err != nil {
		return err
	}
	rep.Shard = &sh
	progress("capacity calibration: end to end, %s", capacityE2E.Name)
	e, err := b.runE2E(ctx, e2eEntries, capacityE2E)
	if err != nil {
		return err
	}
	progress("   %s", e2eLine(e))
	rep.E2E = append(rep.E2E, e)
	progress("capacity calibration: status streams, %d pages, held %s", *sseStreams, *sseHold)
	sse, err := runSSE(ctx, o.redis, *sseStreams, *sseHold)
	if err != nil {
		return err
	}
	rep.SSE = &sse
	cal, err := calibrationFrom(rep, c, "component runs of this `-capacity-only` invocation")
	if err != nil {
		return err
	}
	res, err := b.runCapacity(ctx, cal)
	if err != nil {
		return err
	}
	res.Calibration = cal
	if err := os.WriteFile(o.capacity, []byte(capacityMarkdown(res, rep.Machine)), 0o644); err != nil {
		return err
	}
	progress("wrote %s", o.capacity)
	path := filepath.Join(o.out, "results.json")
	if _, err := os.Stat(path); err == nil {
		if err := mergeField(path, "Capacity", res); err != nil {
			return err
		}
		progress("merged \"Capacity\" into %s", path)
	}
	return nil
}

func cpuLine(r HTTPResult) string {
	return fmt.Sprintf("%.0f req/s, CPU per request: server %s µs, Redis %s µs, Kafka %s µs, wrk %s µs; box busy %.0f%%",
		r.RPS, us(r.ServerMicros()), us(r.RedisMicros()), us(r.KafkaMicros()), us(r.LoadMicros()), 100*r.BoxBusy(numCPU()))
}

// pct formats a share as a percentage.
func pct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

// num formats a count or rate with thousands separators.
func num(v float64) string {
	if math.IsInf(v, 0) {
		return "∞"
	}
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// capacityMarkdown renders CAPACITY.md.
func capacityMarkdown(res CapacityResult, m Machine) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cal, p, cr := res.Calibration, res.Plan, res.Plan.Crowd
	w("# Capacity\n\n")
	w("How many API processes and Redis masters a crowd needs, and what the database sees: a model built on the CPU\n")
	w("each operation costs, checked against this box. Generated by `scripts/bench.sh` (the tool is `examples/bench`;\n")
	w("`scripts/bench.sh -capacity-only` reproduces this file alone) on %s, on %s, %d cores, Redis %s.\n",
		res.Started.Format("2006-01-02 15:04 UTC"), m.CPU, res.Cores, strings.TrimPrefix(strings.Fields(m.Redis + " ? ?")[2], "v="))
	w("Every number below comes from that one invocation; rerun the command to regenerate all of it.\n\n")

	w("## 1. Calibration: CPU per operation\n\n")
	w("Measured in %s: each process's CPU time (user + system) over a run, divided by what the run did. *api* is the\n", cal.Source)
	w("bench process, which serves the public handler of a node (`node.New`, API role, Redis backend) on a loopback\n")
	w("port, or runs the pipeline for a drained unit (the *worker*); *Redis* is `INFO cpu` (used_cpu_user +\n")
	w("used_cpu_sys; on the Cluster per master); *Kafka* and *Postgres* are the servers' processes (`/proc`); *wrk* is the\n")
	w("load generator, on this box but no part of what a deployment pays. HTTP runs: wrk at %d connections for %s.\n\n", cal.V2.Conns, durOf(res))
	w("| operation | measured in | rate | api µs | Redis µs | Kafka µs | Postgres µs | wrk µs | notes |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	op := func(name, from string, c OpCost, notes string) {
		w("| %s | %s | %s req/s | %s | %s | %s | — | %s | %s |\n", name, from, num(c.RPS), us(c.API), us(c.Redis), us(c.Kafka), us(c.Load), notes)
	}
	op("admission, no-op handler", "HTTP, `noop`", cal.Noop, "the HTTP floor")
	op("admission, V2 (one line)", "HTTP, `v2`", cal.V2, fmt.Sprintf("%.1f admissions per script call", cal.V2.PerScript))
	op("admission, V2 uncoalesced", "HTTP, `v2-uncoalesced`", cal.V2U, fmt.Sprintf("%.1f admissions per script call", cal.V2U.PerScript))
	op("admission, V1 per-user lock", "HTTP, `v1-user-lock`", cal.V1, "lock, SADD, INCR, publish")
	op("status poll (a waiting user)", "HTTP, `GET .../entries/me`", cal.StatusPoll, fmt.Sprintf("%d users waiting; %.2f Redis commands a poll", statusPollUsers, cal.StatusPoll.CmdsPerOp))
	clRow := func(c ClusterCost) {
		parts := make([]string, len(c.PerMaster))
		for i, v := range c.PerMaster {
			parts[i] = us(v)
		}
		w("| admission, V2 over %d sub-lines | Go API on the %d-master Cluster (no HTTP) | %s adm/s | — | %s (%s) | — | — | — | %.1f admissions per script call |\n",
			c.SubLines, len(c.PerMaster), num(c.AdmitPerSec), us(c.Total), strings.Join(parts, " / "), c.PerScript)
	}
	clRow(cal.Cluster)
	if cal.ClusterWide != nil {
		clRow(*cal.ClusterWide)
	}
	d := cal.Drain
	w("| drained unit | end to end, `%s` | %s units/s | %s | %s | %s | %s | — | %.4f Store calls a unit (%.1f entries a call) |\n",
		d.Variant, num(d.UnitsPerSec), us(d.Worker), us(d.Redis), us(d.Kafka), us(d.Postgres), d.StoreCallsPerUnit, d.EntriesPerCall)
	s := cal.Stream
	w("| open status stream, per second | waiting-room section, %s streams, %s drained/s | — | %s | %s | — | — | %s (client) | %.2f events, %.4f Redis commands a stream-second |\n\n",
		num(float64(s.Streams)), num(s.DrainPerSec), us(s.API), signed(s.Redis), us(s.Client), s.EventsPerStreamSecond, s.CommandsPerStreamSecond)
	if cal.RoundTripMs > 0 {
		w("V2 at one connection (the round trip the plan's coalescing uses): p50 %.3f ms a request.\n\n", cal.RoundTripMs)
	}
	w("An open stream's Redis figure is the hold's Redis CPU less the baseline's, per stream-second: its reads follow the\n")
	w("drain and the campaigns, not the streams, so it is near zero and noisy; the plan counts those reads instead.\n\n")

	w("## 2. The model\n\n")
	w("Assumptions:\n\n")
	w("- **CPU-bound.** Every operation costs the CPU above, whatever the load; nothing else (the network, locks,\n")
	w("  latency) limits throughput. A process that can use every core (the Go API process, wrk, Kafka, Postgres) takes\n")
	w("  its share of the box; a **Redis master is single-threaded**: it uses at most one core.\n")
	w("- **Throughput** of a box is where the first resource saturates:\n")
	w("  `X = min(C × 10⁶ / Σ µs per request, 10⁶ / µs of each Redis master)`, C the cores the processes can use: the\n")
	w("  box's %d times the share the no-op run's processes (server, Redis, wrk) reached while saturating it, **%s**, so\n", res.Cores, pct(cal.Usable))
	w("  **C = %.2f** (the rest is CPU charged to none of them: the kernel's, anything else running). Each process's share\n", float64(res.Cores)*cal.Usable)
	w("  of the box is `µs × X / 10⁶ / %d`. The load generator's CPU counts on this box (it shares the cores); in a\n", res.Cores)
	w("  deployment the clients are the users' browsers and it drops out.\n")
	w("- **The API scales with cores**: a fleet of N cores serves N / (µs per request) × 10⁶ requests a second, however\n")
	w("  it is cut into processes. **Redis scales with masters** only for a campaign spread over as many sub-lines\n")
	w("  (`Campaign.Shards`), evenly (the bench picks campaign IDs whose sub-lines fall one per master).\n")
	w("- **Coalescing**: a cost per admission holds at the batch it was measured at (admissions per script call,\n")
	w("  above); a smaller batch costs more per admission. V2 and V2 uncoalesced split each (api and Redis) into a part\n")
	w("  per script call and a part per admission: `uncoalesced = call + adm`, `coalesced = call / B + adm` at the V2\n")
	w("  run's batch B. In the checks each configuration keeps its calibration's batch (the Cluster's Redis costs come\n")
	w("  from the Go API, 256 callers, no HTTP; over HTTP its batches differ). In the plan every API process coalesces\n")
	w("  its own admissions per sub-line, so a call carries `1 + λ·T`: λ the admissions a second one process sends one\n")
	w("  sub-line, T a round trip (V2's p50 at one connection: a whole request, an upper bound, so the batch too).\n")
	w("- **A page load costs a status poll** (one Status read; the page's HTML rendering is not measured apart), and\n")
	w("  **an open stream costs what the waiting-room section measured a stream-second** (one event a second, at its\n")
	w("  drain rate). The streams' Redis reads follow the drain, not the crowd: one Status read per user leaving the\n")
	w("  line, one `LineStats` per API process a second.\n")
	w("- **The drain** costs, per unit, what the end-to-end run measured (its batch of up to 100 entries a Store call).\n")
	w("- Costs measured on %d shared cores include the contention of wrk, Redis and the server on them; on dedicated\n", res.Cores)
	w("  machines they should be lower, so the plan errs on the side of more.\n\n")

	w("## 3. Predicted vs measured on this box\n\n")
	w("The three configurations were predicted from the calibration above (costs per request → throughput and CPU\n")
	w("shares), the predictions printed, and then run: wrk at %d connections for %s, a fresh node and campaign each. *V2, one line*\n", cal.V2.Conns, durOf(res))
	w("and *V1* repeat a calibration's setup in a later run: they test that the costs hold from run to run and that\n")
	w("the box is CPU-bound (throughput = cores / cost). *V2 over sub-lines* was never run as such in calibration: its\n")
	w("api and wrk costs come from the one-line HTTP run, its Redis costs per master from the Go API run on the Cluster.\n\n")
	w("*rest of the box* is the whole box's busy CPU (/proc/stat) over the run less the measured processes': the kernel's\n")
	w("work for them that lands outside their accounts, and anything else running; each run first waited for the box to\n")
	w("settle below %.0f%% busy (after the previous run's keys were removed from Redis).\n\n", 100*quietShare)
	w("| configuration | saturates (predicted) | req/s predicted | req/s measured | error | CPU share of the box, predicted / measured | measured box busy | rest of the box |\n")
	w("|---|---|---:|---:|---:|---|---:|---:|\n")
	for _, c := range res.Checks {
		parts := make([]string, len(c.Costs))
		for i, pc := range c.Costs {
			ms := 0.0
			if i < len(c.MeasuredShares) {
				ms = c.MeasuredShares[i]
			}
			parts[i] = fmt.Sprintf("%s %s / %s", pc.Proc, pct(c.PredictedShares[i]), pct(ms))
		}
		rest := "—"
		if s := c.Run.RestShare(res.Cores); s >= 0 {
			rest = pct(s)
		}
		w("| %s | %s | %s | %s | %+.0f%% | %s | %s | %s |\n", c.Name, c.Bound, num(c.PredictedRPS), num(c.MeasuredRPS), c.ErrPct(), strings.Join(parts, "; "), pct(c.MeasuredBusy), rest)
	}
	w("\n")
	var met, miss []string
	for _, c := range res.Checks {
		if math.Abs(c.ErrPct()) <= 20 {
			met = append(met, c.Name)
		} else {
			miss = append(miss, fmt.Sprintf("%s (%+.0f%%)", c.Name, c.ErrPct()))
		}
	}
	w("Target: each prediction within ±20%% of the measured throughput. Met by %d of %d", len(met), len(res.Checks))
	if len(miss) > 0 {
		w("; missed by %s", strings.Join(miss, ", "))
	}
	w(".\n\n")
	w("Per request in each check's run (µs; the calibration's in brackets):\n\n")
	w("| configuration | api | Redis | wrk | admissions per script call | p50 / p99 ms |\n|---|---:|---:|---:|---:|---:|\n")
	for i, c := range res.Checks {
		r := c.Run
		var calAPI, calRedis, calLoad, calPS float64
		switch i {
		case 0:
			calAPI, calRedis, calLoad, calPS = cal.V2.API, cal.V2.Redis, cal.V2.Load, cal.V2.PerScript
		case 1:
			calAPI, calRedis, calLoad, calPS = cal.V2.API, cal.Cluster.Total, cal.V2.Load, cal.Cluster.PerScript
		case 2:
			calAPI, calRedis, calLoad, calPS = cal.V1.API, cal.V1.Redis, cal.V1.Load, 0
		}
		ps := "—"
		if r.RedisScripts > 0 && c.Scenario != "v1-user-lock" {
			ps = fmt.Sprintf("%.1f (%.1f)", r.AdmissionsPerScript(), calPS)
		}
		w("| %s | %s (%s) | %s (%s) | %s (%s) | %s | %.2f / %.2f |\n", c.Name, us(r.ServerMicros()), us(calAPI), us(r.RedisMicros()), us(calRedis),
			us(r.LoadMicros()), us(calLoad), ps, r.P50ms, r.P99ms)
	}
	w("\n")
	w("Where the error comes from. When the box binds, predicted / measured throughput is the product of two factors\n")
	w("(up to the difference between wrk's clock and the bench's over a run): *cost*, the run's CPU per request (its\n")
	w("processes summed) over the calibration's, and *idle*, the usable\n")
	w("share (%s) over the share of the box the run's processes used. A cost factor away from 1 means the cost per\n", pct(cal.Usable))
	w("request is not a constant of the operation (Redis's follows the coalesced batch; contention for the cores\n")
	w("inflates every process's); an idle factor above 1 means the run did not keep the cores busy (it waited: V1's\n")
	w("locks and its Kafka publish, round trips).\n\n")
	for _, c := range res.Checks {
		cost, idle, calSum, measSum := c.errorFactors(cal.Usable)
		w("- **%s**: %.2f = cost %.2f (%s µs a request against %s) × idle %.2f (%s busy)", c.Name, c.PredictedRPS/max(c.MeasuredRPS, 1),
			cost, us(measSum), us(calSum), idle, pct(c.MeasuredBusy))
		if c.Run.IdleRedisCmdsPerSec > shardBusyPerSec {
			w("; another client ran %s commands/s on Redis just before the run, and its CPU counts here", num(c.Run.IdleRedisCmdsPerSec))
		}
		w(".\n")
	}
	w("\n")

	w("## 4. %s people in the first %s: the plan\n\n", num(float64(cr.Arrivals)), durSec(cr.WindowSec))
	w("The question: *how many API processes and Redis masters do we need for %s people in the first %s, and what\n", num(float64(cr.Arrivals)), durSec(cr.WindowSec))
	w("does the database see?* The crowd (flags `-crowd-*`): %s arrivals over %s, evenly: **%s arrivals/s**, one hot\n",
		num(float64(cr.Arrivals)), durSec(cr.WindowSec), num(p.ArrivalsPerSec))
	w("campaign, stock %s, drained at %s units/s (the campaign's BatchSize per Interval) to the Postgres Store; %s of\n",
		num(float64(cr.Stock)), num(cr.DrainPerSec), pct(cr.StreamShare))
	w("the waiting users with the waiting-room page open (one page load each, then a status stream). The fleet: an API\n")
	w("fleet of **%d cores** (processes of %d cores), a **%d-master** Redis Cluster, the campaign over %d sub-lines; every\n",
		cr.APICores, cr.ProcessCores, cr.Masters, cr.Masters)
	w("core planned to at most %s busy.\n\n", pct(cr.Headroom))
	w("The line grows at arrivals less drain, %s − %s = %s a second, until the window ends or the stock runs out\n",
		num(p.ArrivalsPerSec), num(cr.DrainPerSec), num(max(p.ArrivalsPerSec-cr.DrainPerSec, 0)))
	w("(%s / %s = %s s): at its longest, after %s s, **%s people wait**, %s of them with a stream open.\n\n",
		num(float64(cr.Stock)), num(cr.DrainPerSec), fmtSec(p.SellOutSec), fmtSec(p.PeakSec), num(p.Waiting), num(p.Streams))
	w("Coalescing: %.0f API processes × %d sub-lines = %.0f queues, each taking %s / %.0f = %s admissions a second; with a\n",
		p.Queues/float64(max(cr.Masters, 1)), cr.Masters, p.Queues, num(p.ArrivalsPerSec), p.Queues, num(p.ArrivalsPerSec/p.Queues))
	w("round trip of %.3f ms a script call carries 1 + %s × %.5f = **%.2f admissions**. Split from V2 (%.1f a call) and V2\n",
		cal.RoundTripMs, num(p.ArrivalsPerSec/p.Queues), cal.RoundTripMs/1e3, p.Batch, cal.V2.PerScript)
	w("uncoalesced: api %s µs a call + %s µs an admission, Redis %s + %s; at %.2f a call, **api %s µs and Redis %s µs an\n",
		us(p.APICall), us(p.APIAdm), us(p.RedisCall), us(p.RedisAdm), p.Batch, us(p.APIAdm+p.APICall/p.Batch), us(p.RedisAdm+p.RedisCall/p.Batch))
	w("admission** (the calibration's coalesced run: %s and %s). (For comparison, the Go API on the Cluster measured %s µs\n",
		us(cal.V2.API), us(cal.V2.Redis), us(cal.Cluster.Total))
	w("of Redis an admission over %d sub-lines at %.1f a call.)\n\n", cal.Cluster.SubLines, cal.Cluster.PerScript)
	res2 := func(r Resource) {
		w("**%s** (µs of CPU a second):\n\n| load | rate | µs each | cores |\n|---|---:|---:|---:|\n", r.Name)
		for _, t := range r.Terms {
			w("| %s | %s %s | %s | %.2f |\n", t.What, num(t.Rate), t.Unit, us(t.Micros), t.Rate*t.Micros/1e6)
		}
		w("| **total** | | | **%.2f** |\n\n", r.Cores)
	}
	res2(p.API)
	res2(p.Redis)
	res2(p.Worker)
	if cal.Drain.Postgres >= 0 {
		res2(p.PG)
	}
	w("So:\n\n")
	w("- **API**: %.1f cores busy → at %s per core, **%d processes of %d cores** (%d cores); the %d-core fleet would be\n",
		p.API.Cores, pct(cr.Headroom), p.APIProcesses, cr.ProcessCores, p.APIProcesses*cr.ProcessCores, cr.APICores)
	w("  %s busy. It saturates at about **%s arrivals/s** (`(%d × 10⁶) / %s µs per arrival`, streams included).\n",
		pct(p.API.Util()), num(p.API.SaturationArrivals()), cr.APICores, us(p.API.PerArrival))
	w("- **Redis**: %.2f cores in all → %.2f a master over %d masters (%s of each one's core); at %s per core, **%d\n",
		p.Redis.Cores, p.PerMasterCores, cr.Masters, pct(p.PerMasterCores), pct(cr.Headroom), p.MastersNeeded)
	w("  master(s)** would do. The %d masters saturate at about **%s arrivals/s** (`(%d × 10⁶ − %s µs/s for the drain and\n",
		cr.Masters, num(p.Redis.SaturationArrivals()), cr.Masters, num(p.Redis.Fixed))
	w("  streams) / %s µs per arrival`).\n", us(p.Redis.PerArrival))
	w("- **Saturates first: the %s** (at %s arrivals/s against %s for the other).\n", p.First,
		num(min(p.API.SaturationArrivals(), p.Redis.SaturationArrivals())), num(max(p.API.SaturationArrivals(), p.Redis.SaturationArrivals())))
	w("- **Workers**: %.2f cores to drain %s units/s (scheduler, Kafka client, issuer).\n", p.Worker.Cores, num(cr.DrainPerSec))
	w("- **The database (the Store) sees the drain rate, not the crowd**: %s units/s in **%s `IssueBatch` calls/s**\n",
		num(p.StoreUnitsPerSec), num(p.StoreCallsPerSec))
	w("  (%.4f calls a unit, %.1f entries a call)", cal.Drain.StoreCallsPerUnit, cal.Drain.EntriesPerCall)
	if cal.Drain.Postgres >= 0 {
		w(", costing Postgres %.2f cores", p.PG.Cores)
	}
	w(", for %s s until the stock of %s is gone; the %s arrivals a second never reach it.\n",
		fmtSec(p.SellOutSec), num(float64(cr.Stock)), num(p.ArrivalsPerSec))
	w("- Had the %s waiting users polled `GET .../entries/me` once a second instead of holding a stream, the polls\n", num(p.Waiting))
	w("  alone would cost %.1f cores (API and Redis, at the status poll's cost) every second they wait.\n\n", p.PollInstead)
	w("The plan scales linearly in each input: rerun with other `-crowd-*` flags (`-crowd-arrivals`, `-crowd-window`,\n")
	w("`-crowd-stock`, `-crowd-drain`, `-crowd-streams`, `-crowd-api-cores`, `-crowd-masters`, `-crowd-process-cores`,\n")
	w("`-crowd-headroom`) or re-render it from results.json with `-from`.\n")
	return b.String()
}

// durOf is the check runs' duration, from their wrk runs.
func durOf(res CapacityResult) string {
	for _, c := range res.Checks {
		if c.Run.Seconds > 0 {
			return fmt.Sprintf("%.0f s", c.Run.Seconds)
		}
	}
	return "the run's duration"
}

func durSec(s float64) string { return fmtSec(s) + " s" }

func fmtSec(s float64) string {
	if math.IsInf(s, 0) {
		return "∞"
	}
	if s == math.Trunc(s) {
		return fmt.Sprintf("%.0f", s)
	}
	return fmt.Sprintf("%.1f", s)
}

// signed formats µs that may be negative (a difference of two rates).
func signed(v float64) string { return fmt.Sprintf("%.2f", v) }
