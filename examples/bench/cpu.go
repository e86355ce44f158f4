package main

// CPU time per process, for the costs per operation: the bench process's
// own (getrusage), Redis's (INFO cpu), and the Kafka broker's and
// Postgres's (/proc, from the pid files the scripts that start them
// write).

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU is this process's CPU time so far, user and system, all its
// threads (Go's and librdkafka's).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux this runs on.
const clockTicks = 100

// procStat reads /proc/<pid>/stat: the parent's pid and the CPU time so
// far (utime + stime, seconds); ok false if the process is gone.
func procStat(pid int) (ppid int, cpu float64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (ut + st) / clockTicks, true
}

// treeCPU is the CPU time so far of pid and its children (one level: a
// Postgres postmaster's backends); 0, false if pid is 0 or gone.
func treeCPU(pid int) (float64, bool) {
	if pid <= 0 {
		return 0, false
	}
	_, total, ok := procStat(pid)
	if !ok {
		return 0, false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if pp, cpu, ok := procStat(child); ok && pp == pid {
			total += cpu
		}
	}
	return total, true
}

// stateDir is where scripts/*.sh keep their servers' state.
func stateDir() string {
	if d := os.Getenv("COUPONQ_STATE_DIR"); d != "" {
		return d
	}
	return filepath.Join(".cache", "servers")
}

// pidFile reads a pid from the first line of path; 0 if none.
func pidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if _, _, ok := procStat(pid); !ok {
		return 0
	}
	return pid
}

// kafkaPID is the one-broker Kafka's (scripts/kafka.sh start 1), 0 if
// unknown.
func kafkaPID() int { return pidFile(filepath.Join(stateDir(), "kafka-1", "node1", "pid")) }

// postgresPID is the postmaster's (scripts/postgres.sh), 0 if unknown.
func postgresPID() int {
	return pidFile(filepath.Join(stateDir(), "postgres", "data", "postmaster.pid"))
}

// cpuSnap is one reading of the processes' CPU times, seconds.
type cpuSnap struct {
	at            time.Time
	self          float64
	kafka, pg     float64
	kafkaOK, pgOK bool
	kafkaP, pgP   int
}

// cpuMeter reads the bench process's CPU and, if their pid files are
// there, the Kafka broker's and Postgres's (postmaster and backends).
type cpuMeter struct{ kafkaPID, pgPID int }

func newCPUMeter() cpuMeter { return cpuMeter{kafkaPID: kafkaPID(), pgPID: postgresPID()} }

func (m cpuMeter) read() cpuSnap {
	s := cpuSnap{at: time.Now(), self: selfCPU(), kafkaP: m.kafkaPID, pgP: m.pgPID}
	if m.kafkaPID > 0 {
		_, s.kafka, s.kafkaOK = procStat(m.kafkaPID)
	}
	s.pg, s.pgOK = treeCPU(m.pgPID)
	return s
}

// cpuDelta is the CPU each process used between two readings, seconds; a
// negative Kafka or Postgres figure means not measured.
type cpuDelta struct {
	Wall, Self, Kafka, Postgres float64
}

func (s cpuSnap) since(s0 cpuSnap) cpuDelta {
	d := cpuDelta{Wall: s.at.Sub(s0.at).Seconds(), Self: s.self - s0.self, Kafka: -1, Postgres: -1}
	if s.kafkaOK && s0.kafkaOK {
		d.Kafka = s.kafka - s0.kafka
	}
	if s.pgOK && s0.pgOK {
		d.Postgres = s.pg - s0.pg
	}
	return d
}

// micros is sec per n in microseconds; 0 for no n, -1 (not measured) for
// a negative sec.
func micros(sec float64, n int64) float64 {
	if sec < 0 {
		return -1
	}
	if n <= 0 {
		return 0
	}
	return sec * 1e6 / float64(n)
}

// boxCPU reads /proc/stat's first line: the CPU seconds the whole box has
// spent busy (user, nice, system, irq, softirq, steal) since boot; ok is
// false where there is no /proc.
func boxCPU() (busy float64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, true
}

// quietShare is the share of the box that counts as quiet before a run:
// what a previous run left behind (Redis freeing its keys, Kafka and
// Postgres writing out, the scheduler's own idle ticks) is below it.
const quietShare = 0.10

// waitQuiet waits, up to max, until the whole box stays below quietShare
// busy over a half-second window, so each HTTP run starts from the same
// rest; it returns how long it waited and the last window's busy share.
func waitQuiet(ctx context.Context, max time.Duration) (time.Duration, float64) {
	start := time.Now()
	share := 0.0
	for {
		b0, ok := boxCPU()
		t0 := time.Now()
		if !ok {
			return 0, 0
		}
		select {
		case <-ctx.Done():
			return time.Since(start), share
		case <-time.After(500 * time.Millisecond):
		}
		b1, _ := boxCPU()
		share = (b1 - b0) / time.Since(t0).Seconds() / float64(numCPU())
		if share < quietShare || time.Since(start) >= max {
			return time.Since(start), share
		}
	}
}
