package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPredictThroughput(t *testing.T) {
	// The box binds: 2 cores over 50 + 10 + 40 µs a request.
	x, bound := predictThroughput([]ProcCost{{"api", 50, false}, {"Redis", 10, true}, {"wrk", 40, false}}, 2)
	assert.InDelta(t, 20_000, x, 1e-9)
	assert.Equal(t, "the box's 2.00 usable cores", bound)
	assert.InDelta(t, 0.5, shareOf(50, x, 2), 1e-12)
	assert.InDelta(t, 0.1, shareOf(10, x, 2), 1e-12)

	// A single-threaded master binds first: 10⁶ / 125 = 8,000 < 8 × 10⁶ / 200.
	x, bound = predictThroughput([]ProcCost{{"api", 75, false}, {"Redis master 1", 125, true}}, 8)
	assert.InDelta(t, 8_000, x, 1e-9)
	assert.Equal(t, "Redis master 1 (one core)", bound)

	x, _ = predictThroughput(nil, 2)
	assert.Zero(t, x)
}

func TestSplitBatch(t *testing.T) {
	// 30 µs uncoalesced, 12 at a batch of 100: call + adm = 30, call/100 + adm = 12.
	call, adm := splitBatch(30, 12, 100)
	assert.InDelta(t, 30, call+adm, 1e-9)
	assert.InDelta(t, 12, call/100+adm, 1e-9)
	assert.InDelta(t, 18/0.99, call, 1e-9)
	// No batch, or a batch that cost more: all of it per admission.
	call, adm = splitBatch(30, 12, 1)
	assert.Equal(t, [2]float64{0, 12}, [2]float64{call, adm})
	call, adm = splitBatch(10, 12, 50)
	assert.Equal(t, [2]float64{0, 12}, [2]float64{call, adm})

	assert.Equal(t, 1.0, coalescedBatch(500, 0))
	assert.InDelta(t, 1.25, coalescedBatch(500, 0.0005), 1e-12)
}

func TestMicrosAndNum(t *testing.T) {
	assert.InDelta(t, 25, micros(0.5, 20_000), 1e-9)
	assert.Equal(t, 0.0, micros(1, 0))
	assert.Equal(t, -1.0, micros(-1, 10))
	assert.Equal(t, "300,000", num(300_000))
	assert.Equal(t, "1,234,568", num(1_234_567.5))
	assert.Equal(t, "-12,000", num(-12_000))
	assert.Equal(t, "999", num(999))
	assert.Equal(t, "∞", num(math.Inf(1)))
}

// testCalibration is round numbers, so the plan's arithmetic can be
// checked by hand.
func testCalibration() Calibration {
	return Calibration{
		Source: "a test",
		Noop:   OpCost{Scenario: "noop", Conns: 1000, RPS: 50_000, API: 20, Redis: 0, Kafka: -1, Load: 15},
		// V2: 40 api + 10 Redis at 100 a call; uncoalesced 58 + 28.
		V2:          OpCost{Scenario: "v2", Conns: 1000, RPS: 25_000, API: 40, Redis: 10, Kafka: -1, Load: 20, PerScript: 100},
		V2U:         OpCost{Scenario: "v2-uncoalesced", Conns: 1000, RPS: 15_000, API: 58, Redis: 28, Kafka: -1, Load: 20, PerScript: 1},
		V1:          OpCost{Scenario: "v1-user-lock", Conns: 1000, RPS: 5_000, API: 200, Redis: 50, Kafka: 100, Load: 40},
		StatusPoll:  OpCost{Scenario: statusPollScenario, Conns: 1000, RPS: 10_000, API: 60, Redis: 30, Kafka: -1, Load: 20},
		RoundTripMs: 0.5,
		Usable:      1,
		Cluster:     ClusterCost{SubLines: 3, PerMaster: []float64{4, 4, 4}, Total: 12, PerScript: 30, AdmitPerSec: 90_000},
		Drain:       DrainCost{Variant: "postgres, batch", UnitsPerSec: 20_000, Worker: 20, Redis: 20, Kafka: 15, Postgres: 25, StoreCallsPerUnit: 0.0125, EntriesPerCall: 80},
		Stream:      StreamCost{Streams: 10_000, DrainPerSec: 100, API: 20, Redis: 0.01, Client: 15, EventsPerStreamSecond: 1},
	}
}

func TestPlan(t *testing.T) {
	cal := testCalibration()
	cr := Crowd{Arrivals: 300_000, WindowSec: 10, Stock: 100_000, DrainPerSec: 10_000, StreamShare: 1,
		APICores: 32, Masters: 6, ProcessCores: 4, Headroom: 0.7}
	p := plan(cal, cr)
	assert.Equal(t, 30_000.0, p.ArrivalsPerSec)
	assert.Equal(t, 10.0, p.SellOutSec)
	assert.Equal(t, 10.0, p.PeakSec)
	assert.Equal(t, 200_000.0, p.Waiting) // (30,000 − 10,000) × 10
	assert.Equal(t, 200_000.0, p.Streams)
	// 8 processes × 6 sub-lines = 48 queues of 625/s; 1 + 625 × 0.0005 = 1.3125 a call.
	assert.Equal(t, 48.0, p.Queues)
	assert.InDelta(t, 1.3125, p.Batch, 1e-12)
	// api: call 18/0.99, adm 58 − call; Redis: call 18/0.99, adm 28 − call.
	call := 18 / 0.99
	apiAdm := 58 - call + call/1.3125
	redisAdm := 28 - call + call/1.3125
	assert.InDelta(t, call, p.APICall, 1e-9)
	assert.InDelta(t, call, p.RedisCall, 1e-9)
	// API: admissions + page loads (a status poll each) + streams.
	api := 30_000*apiAdm + 30_000*60 + 200_000*20
	assert.InDelta(t, api, p.API.MicrosPerSec, 1e-6)
	assert.InDelta(t, api/1e6, p.API.Cores, 1e-9)
	assert.Equal(t, int(math.Ceil(api/1e6/(4*0.7))), p.APIProcesses)
	// Redis: admissions + page loads + drain + leavers' Status + LineStats of 8 processes.
	redisUS := 30_000*redisAdm + 30_000*30 + 10_000*20 + 10_000*30 + 8*30
	assert.InDelta(t, redisUS, p.Redis.MicrosPerSec, 1e-6)
	assert.Equal(t, int(math.Ceil(redisUS/1e6/0.7)), p.MastersNeeded)
	assert.InDelta(t, redisUS/1e6/6, p.PerMasterCores, 1e-9)
	// Saturation: API (32 × 10⁶) / per arrival (streams grow with arrivals: 200,000 / 30,000 a second).
	perArrival := apiAdm + 60 + 200_000.0/30_000*20
	assert.InDelta(t, 32e6/perArrival, p.API.SaturationArrivals(), 1e-6)
	fixed := 10_000*(20+30.0) + 8*30
	assert.InDelta(t, (6e6-fixed)/(redisAdm+30), p.Redis.SaturationArrivals(), 1e-6)
	if p.Redis.SaturationArrivals() < p.API.SaturationArrivals() {
		assert.Equal(t, "Redis Cluster", p.First)
	} else {
		assert.Equal(t, "API fleet", p.First)
	}
	// The Store sees the drain: 10,000 units/s in 125 calls/s.
	assert.Equal(t, 10_000.0, p.StoreUnitsPerSec)
	assert.InDelta(t, 125, p.StoreCallsPerSec, 1e-9)
	assert.InDelta(t, 0.2, p.Worker.Cores, 1e-12)
	assert.InDelta(t, 0.25, p.PG.Cores, 1e-12)
	assert.InDelta(t, 200_000*90/1e6, p.PollInstead, 1e-9)

	// The stock outlasts the window at a slow drain: the line peaks at its end.
	cr.DrainPerSec = 1_000
	p = plan(cal, cr)
	assert.Equal(t, 10.0, p.PeakSec)
	assert.Equal(t, 290_000.0, p.Waiting)
	// A fast drain sells out first: the line peaks then.
	cr.DrainPerSec, cr.StreamShare = 25_000, 0.5
	p = plan(cal, cr)
	assert.Equal(t, 4.0, p.PeakSec)
	assert.Equal(t, 20_000.0, p.Waiting)
	assert.Equal(t, 10_000.0, p.Streams)
}

func TestChecks(t *testing.T) {
	cal := testCalibration()
	checks := checkCosts(cal)
	require.Len(t, checks, 3)
	for i := range checks {
		checks[i].predict(2, 1)
	}
	// One line: 2 × 10⁶ / (40 + 10 + 20).
	assert.InDelta(t, 2e6/70, checks[0].PredictedRPS, 1e-9)
	// The Cluster: api and wrk from the one-line run, 4 µs a master.
	assert.True(t, checks[1].Cluster)
	assert.Equal(t, 3, checks[1].Shards)
	assert.InDelta(t, 2e6/72, checks[1].PredictedRPS, 1e-9)
	assert.Len(t, checks[1].Costs, 5)
	// V1 with its Kafka broker.
	assert.InDelta(t, 2e6/390, checks[2].PredictedRPS, 1e-9)
	// A usable share of 90%: 1.8 cores shared out.
	c := checks[0]
	c.predict(2, 0.9)
	assert.InDelta(t, 1.8e6/70, c.PredictedRPS, 1e-9)
	assert.InDelta(t, 40*1.8e6/70/1e6/2, c.PredictedShares[0], 1e-12)
	var sum float64
	for _, s := range checks[2].PredictedShares {
		sum += s
	}
	assert.InDelta(t, 1, sum, 1e-12, "box-bound shares fill the box")

	r := HTTPResult{Scenario: "v2", Requests: 200_000, Seconds: 10, RPS: 20_000, CPUWallSec: 10,
		ServerCPUSec: 8, RedisCPUSec: 3, RedisMasterCPUSec: []float64{1, 1, 1}, LoadCPUSec: 4, KafkaCPUSec: 0.2}
	checks[1].measure(r, 2)
	assert.InDelta(t, 0.4, checks[1].MeasuredShares[0], 1e-12)
	assert.InDelta(t, 0.05, checks[1].MeasuredShares[1], 1e-12)
	assert.InDelta(t, 0.2, checks[1].MeasuredShares[4], 1e-12)
	assert.InDelta(t, 0.75, checks[1].MeasuredBusy, 1e-12, "the V2 run's idle broker is left out")
	assert.InDelta(t, 100*(2e6/72-20_000)/20_000, checks[1].ErrPct(), 1e-9)
	// 2e6/72 predicted against 20,000: cost 75/72 (40 api, 15 Redis, 20 wrk) × idle 1/0.75.
	cost, idle, calSum, measSum := checks[1].errorFactors(1)
	assert.InDelta(t, 72, calSum, 1e-9)
	assert.InDelta(t, 75, measSum, 1e-9)
	assert.InDelta(t, checks[1].PredictedRPS/20_000, cost*idle, 1e-9)
	assert.InDelta(t, 40, r.ServerMicros(), 1e-9)
	assert.Equal(t, -1.0, r.KafkaMicros())
	assert.InDelta(t, 55, r.TotalMicros(), 1e-9)
}

// CAPACITY.md renders from a result, and -from re-renders it from
// results.json beside BENCHMARKS.md.
func TestCapacityMarkdown(t *testing.T) {
	cal := testCalibration()
	res := CapacityResult{Started: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Cores: 2, Calibration: cal}
	for _, c := range checkCosts(cal) {
		c.predict(2, 1)
		c.measure(HTTPResult{Scenario: c.Scenario, Requests: 250_000, Seconds: 10, RPS: 25_000, CPUWallSec: 10,
			ServerCPUSec: 10, RedisCPUSec: 2.5, RedisMasterCPUSec: []float64{1, 1, 0.5}, LoadCPUSec: 5, KafkaCPUSec: 1}, 2)
		res.Checks = append(res.Checks, c)
	}
	res.Plan = plan(cal, Crowd{Arrivals: 300_000, WindowSec: 10, Stock: 100_000, DrainPerSec: 10_000, StreamShare: 1,
		APICores: 32, Masters: 6, ProcessCores: 4, Headroom: 0.7})
	md := capacityMarkdown(res, Machine{CPU: "Test CPU", Redis: "Redis server v=7.0.15 sha=0"})
	for _, want := range []string{"# Capacity", "## 1. Calibration", "## 2. The model", "## 3. Predicted vs measured",
		"## 4. 300,000 people in the first 10 s", "| V2, one line, standalone Redis | the box's 2.00 usable cores | 28,571 | 25,000 | +14% |",
		"**200,000 people wait**", "125 `IssueBatch` calls/s", "Saturates first", "Redis 7.0.15"} {
		assert.Contains(t, md, want)
	}

	dir := t.TempDir()
	rep := savedReport(t)
	rep.Capacity = &res
	rep.Finished = rep.Started.Add(time.Minute)
	o := options{out: dir, md: filepath.Join(dir, "BENCHMARKS.md"), capacity: filepath.Join(dir, "CAPACITY.md")}
	js := mustJSON(t, rep)
	path := filepath.Join(dir, "results.json")
	require.NoError(t, os.WriteFile(path, js, 0o644))
	require.NoError(t, render(path, o))
	got, err := os.ReadFile(o.capacity)
	require.NoError(t, err)
	assert.Equal(t, capacityMarkdown(res, rep.Machine), string(got))
	bench, err := os.ReadFile(o.md)
	require.NoError(t, err)
	assert.Contains(t, string(bench), "| capacity model (CAPACITY.md): predicted / measured throughput, worst of 3 configurations")
	assert.True(t, strings.Contains(string(bench), "## HTTP admission"))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
