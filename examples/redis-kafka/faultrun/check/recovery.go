package check

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The windows the recovery figures use, relative to a fault.
const (
	// recoveryHold: recovery needs every sample dispatched in [D, D+10s]
	// decided within the recovered lag.
	recoveryHold = 10 * time.Second
	// minHold is the shortest a window cut short by the next fault may
	// be: a D whose window would be shorter is not taken, so the next
	// fault cannot make a few good samples pass for a recovery. It is the
	// recovered lag's bound (2 s, some 40 samples at the suite's rates):
	// faults 11 s apart leave a 5 s fault 4 s to show its recovery in.
	minHold = 2 * time.Second
	// lagBefore, lagAfter: max lag is over samples dispatched in
	// [Start-5s, End+30s].
	lagBefore = 5 * time.Second
	lagAfter  = 30 * time.Second
	// gapAfter: dispatch gaps are looked for in [Start, End+30s].
	gapAfter = 30 * time.Second
	// admissionAfter: admission gaps are looked for in [Start, End+10s].
	admissionAfter = 10 * time.Second
	// catchUpGrace: a Store throttle excess that overlaps [Start, End+15s]
	// of a fault is consumers catching up, a note; elsewhere a violation.
	catchUpGrace = 15 * time.Second
	// defaultRecoveredLag is Inputs.RecoveredLag's default.
	defaultRecoveredLag = 2 * time.Second
)

// sortSamples returns the samples sorted by dispatch time (a copy).
func sortSamples(s []Sample) []Sample {
	out := slices.Clone(s)
	slices.SortStableFunc(out, func(a, b Sample) int { return a.DispatchedAt.Compare(b.DispatchedAt) })
	return out
}

// sortPresses returns the presses sorted by answer time (a copy).
func sortPresses(p []Press) []Press {
	out := slices.Clone(p)
	slices.SortStableFunc(out, func(a, b Press) int { return a.At.Compare(b.At) })
	return out
}

// lag returns the sample's decision lag, and false if it was never decided.
func (s Sample) lag() (time.Duration, bool) {
	if s.DecidedAt.IsZero() {
		return 0, false
	}
	return s.DecidedAt.Sub(s.DispatchedAt), true
}

// recoverer answers "when did the pipeline recover after t" over samples
// sorted by dispatch time.
type recoverer struct {
	s       []Sample
	bound   time.Duration
	nextBad []int // nextBad[i]: the first index >= i whose sample is not good; len(s) if none
}

func newRecoverer(sorted []Sample, bound time.Duration) *recoverer {
	r := &recoverer{s: sorted, bound: bound, nextBad: make([]int, len(sorted)+1)}
	r.nextBad[len(sorted)] = len(sorted)
	for i := len(sorted) - 1; i >= 0; i-- {
		if r.good(i) {
			r.nextBad[i] = r.nextBad[i+1]
		} else {
			r.nextBad[i] = i
		}
	}
	return r
}

// good: sample i was decided with a lag within the bound.
func (r *recoverer) good(i int) bool {
	l, ok := r.s[i].lag()
	return ok && l <= r.bound
}

// after returns how many samples were dispatched at or after t, and the
// dispatch time D of the earliest of them such that every sample dispatched
// in [D, D+recoveryHold] is good (D's own sample included, so there is at
// least one); ok false when there is none.
//
// The window ends sooner when next (the next fault's start) is not zero:
// at next less the bound, since a sample dispatched then would have been
// decided by next had nothing happened, and what delays it from there on
// is the next fault; a window cut to less than minHold does not count. A
// D from then on is held for the full window.
func (r *recoverer) after(t, next time.Time) (n int, at time.Time, hold time.Duration, ok bool) {
	if !next.IsZero() {
		next = next.Add(-r.bound)
	}
	i0 := sort.Search(len(r.s), func(i int) bool { return !r.s[i].DispatchedAt.Before(t) })
	n = len(r.s) - i0
	for i := i0; i < len(r.s); i++ {
		if !r.good(i) {
			continue
		}
		d := r.s[i].DispatchedAt
		// [D, D+recoveryHold], or [D, next) when that comes first.
		end, clipped := d.Add(recoveryHold), false
		if !next.IsZero() && d.Before(next) && next.Before(end) {
			end, clipped = next, true
		}
		if clipped && end.Sub(d) < minHold {
			continue
		}
		k := r.nextBad[i]
		if k == len(r.s) || r.s[k].DispatchedAt.After(end) || clipped && r.s[k].DispatchedAt.Equal(end) {
			return n, d, end.Sub(d), true
		}
	}
	return n, time.Time{}, 0, false
}

// maxLag returns, among the samples (sorted) dispatched in [from, to], how
// many there were, the largest lag of the decided ones, and how many were
// never decided.
func maxLag(sorted []Sample, from, to time.Time) (n int, max time.Duration, undecided int) {
	i := sort.Search(len(sorted), func(i int) bool { return !sorted[i].DispatchedAt.Before(from) })
	first := true
	for ; i < len(sorted) && !sorted[i].DispatchedAt.After(to); i++ {
		n++
		l, ok := sorted[i].lag()
		if !ok {
			undecided++
			continue
		}
		if first || l > max {
			max, first = l, false
		}
	}
	return n, max, undecided
}

// dispatchGap returns the longest gap between consecutive times of ts
// (sorted), clipped to [from, to], and where it starts; how many times fall
// in [from, to]; and whether the last time overall comes before to (the
// silence after it is not counted: it is not between two messages).
func dispatchGap(ts []time.Time, from, to time.Time) (gap time.Duration, at time.Time, n int, ended bool) {
	if len(ts) == 0 {
		return 0, time.Time{}, 0, true
	}
	ended = ts[len(ts)-1].Before(to)
	k := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(from) })
	for i := k; i < len(ts) && !ts[i].After(to); i++ {
		n++
	}
	// Pairs (a, b) = (ts[i-1], ts[i]) whose span meets [from, to].
	start := k
	if start == 0 {
		start = 1
	}
	for i := start; i < len(ts); i++ {
		a, b := ts[i-1], ts[i]
		if !a.Before(to) {
			break
		}
		if !b.After(from) {
			continue
		}
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if g := b.Sub(a); g > gap {
			gap, at = g, a
		}
	}
	return gap, at, n, ended
}

// answered reports whether a press got an answer from a working api: any
// outcome but "transport" (no answer) and "http_5xx" ones.
func answered(p Press) bool {
	return p.Outcome != "transport" && !strings.HasPrefix(p.Outcome, "http_5")
}

// admissionGap looks at the presses (sorted by At) answered in [from, to]:
// how many, how many failed, and the longest stretch between two answered
// presses with at least one failed press in between, among stretches with a
// failed press inside [from, to]. The stretch runs from the last answered
// press before the failures (or the first failure, if none came before) to
// the first answered press after them (or the last failure, if none came
// after: openEnded).
func admissionGap(ps []Press, from, to time.Time) (n, failed int, gap time.Duration, at time.Time, openEnded bool) {
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	var prev time.Time
	havePrev, found := false, false
	for i := 0; i < len(ps); {
		if answered(ps[i]) {
			if in(ps[i].At) {
				n++
			}
			prev, havePrev = ps[i].At, true
			i++
			continue
		}
		j, hit := i, false
		for ; j < len(ps) && !answered(ps[j]); j++ {
			if in(ps[j].At) {
				n++
				failed++
				hit = true
			}
		}
		if hit {
			a := ps[i].At
			if havePrev {
				a = prev
			}
			b, open := ps[j-1].At, true
			if j < len(ps) {
				b, open = ps[j].At, false
			}
			if g := b.Sub(a); g > gap || !found {
				gap, at, openEnded, found = g, a, open, true
			}
		}
		i = j
	}
	return n, failed, gap, at, openEnded
}

// apiNumber parses a fault target "api-N".
func apiNumber(target string) (int, bool) {
	s, ok := strings.CutPrefix(target, "api-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// apiBack returns the first press answered by api at or after t.
func apiBack(ps []Press, api int, t time.Time) (time.Time, bool) {
	i := sort.Search(len(ps), func(i int) bool { return !ps[i].At.Before(t) })
	for ; i < len(ps); i++ {
		if ps[i].API == api && answered(ps[i]) {
			return ps[i].At, true
		}
	}
	return time.Time{}, false
}

// faultEnd is the fault's End, or its Start when no End was recorded.
func faultEnd(f Fault) time.Time {
	if f.End.IsZero() || f.End.Before(f.Start) {
		return f.Start
	}
	return f.End
}

// faultRows computes the recovery figures of every fault.
func faultRows(in Inputs, topicTimes []time.Time, bound time.Duration) []FaultRow {
	samples := sortSamples(in.Samples)
	presses := sortPresses(in.Presses)
	rec := newRecoverer(samples, bound)
	var lastSample, lastMessage time.Time
	if len(samples) > 0 {
		lastSample = samples[len(samples)-1].DispatchedAt
	}
	if len(topicTimes) > 0 {
		lastMessage = topicTimes[len(topicTimes)-1]
	}
	rows := make([]FaultRow, 0, len(in.Faults))
	for i, f := range in.Faults {
		end := faultEnd(f)
		row := FaultRow{Index: i + 1, Fault: f, LastSample: lastSample, LastMessage: lastMessage}
		var at, next time.Time
		if i+1 < len(in.Faults) {
			next = in.Faults[i+1].Start
		}
		row.SamplesAfter, at, row.Hold, row.Recovered = rec.after(f.Start, next)
		row.NoTraffic = row.SamplesAfter == 0
		if row.Recovered {
			row.RecoveredAt, row.Recovery = at, at.Sub(f.Start)
		}
		timeline(&row, in.Events, topicTimes, next)
		row.LagSamples, row.MaxLag, row.Undecided = maxLag(samples, f.Start.Add(-lagBefore), end.Add(lagAfter))
		row.DispatchGap, row.DispatchGapAt, row.DispatchMessages, row.TopicEnded = dispatchGap(topicTimes, f.Start, end.Add(gapAfter))
		row.Presses, row.FailedPresses, row.AdmissionGap, row.AdmissionGapAt, row.AdmissionOpenEnded = admissionGap(presses, f.Start, end.Add(admissionAfter))
		if f.Kind == "kill-api" {
			if n, ok := apiNumber(f.Target); ok {
				row.API = n
				if t, ok := apiBack(presses, n, end); ok {
					row.APIBack, row.APIBackAfter = true, t.Sub(end)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// timeline fills the row's hand-over times from the workers' events and
// the topic (sorted).
func timeline(row *FaultRow, events []Event, topicTimes []time.Time, next time.Time) {
	f := row.Fault
	until := next
	if until.IsZero() || row.Recovered && row.RecoveredAt.After(until) {
		until = f.Start.Add(time.Hour)
	}
	assignedUntil := f.Start.Add(lagAfter)
	if row.Recovered {
		assignedUntil = row.RecoveredAt.Add(5 * time.Second)
	}
	if assignedUntil.After(until) {
		assignedUntil = until
	}
	for _, e := range events {
		if e.At.Before(f.Start) {
			continue
		}
		switch e.What {
		case EventAssigned:
			if !e.At.After(assignedUntil) && e.At.After(row.Assigned) {
				row.Assigned, row.AssignedProc = e.At, e.Proc
			}
		case EventLeads:
			if e.At.Before(until) && (row.Leads.IsZero() || e.At.Before(row.Leads)) {
				row.Leads, row.LeadsProc = e.At, e.Proc
			}
		}
	}
	gap, at, _, _ := dispatchGap(topicTimes, f.Start, faultEnd(f).Add(gapAfter))
	if gap >= time.Second && !at.After(faultEnd(f)) {
		row.Resumed = at.Add(gap)
	}
}
