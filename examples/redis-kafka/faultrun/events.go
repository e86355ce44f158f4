package main

import (
	"strings"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// The rolling deploy's pace: an api fails /readyz for drainDelay before it
// shuts down, and the crowd's router looks at every api's /readyz every
// healthEvery, so it takes a draining api out of rotation well before the
// api stops accepting connections.
const (
	drainDelay  = time.Second
	healthEvery = 100 * time.Millisecond
)

// sessionTimeout is the workers' consumer group session: longer than the
// brokers take to move the group coordinator when one is killed (their
// broker.session.timeout.ms, 9 s, and the election), so that a broker's
// death does not also expire the workers' sessions. The workers are static
// members, so a killed worker restarted in place does not wait for it.
const sessionTimeout = 15 * time.Second

// The worker log lines the checker's timeline is made of.
var eventLines = map[string]string{
	`msg="couponq/kafkadispatch: partitions assigned"`: check.EventAssigned,
	`msg="couponq: scheduler leads"`:                   check.EventLeads,
}

// fleetEvents reads, from every incarnation's log of the workers, when a
// consumer was assigned partitions and when a scheduler took the lead.
func fleetEvents(workers []*proc) []check.Event {
	var out []check.Event
	for _, w := range workers {
		for _, file := range w.logs() {
			scan(file, "msg=", func(line string) {
				for s, what := range eventLines {
					if !strings.Contains(line, s) {
						continue
					}
					if at, ok := logTime(line); ok {
						out = append(out, check.Event{At: at, Proc: w.name, What: what})
					}
				}
			})
		}
	}
	return out
}

// logTime parses the time= field slog's text handler starts a line with.
func logTime(line string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	v, _, _ := strings.Cut(rest, " ")
	at, err := time.Parse(time.RFC3339Nano, v)
	return at, err == nil
}
