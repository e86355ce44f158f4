package check

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes the report's sections as GitHub markdown, headings
// at level 3: the invariants per campaign, the violations, the notes, the
// recovery per fault, and how each figure is computed. The caller writes
// the document around them.
func (r *Report) WriteMarkdown(w io.Writer) error {
	mw := &mdWriter{w: w}
	r.writeCampaigns(mw)
	mw.p("### Violations\n\n")
	if len(r.Violations) == 0 {
		mw.p("None: every invariant held.\n\n")
	} else {
		for _, v := range r.Violations {
			mw.p("- ❌ %s\n", v)
		}
		mw.p("\n")
	}
	mw.p("### Notes\n\n")
	if len(r.Notes) == 0 {
		mw.p("None.\n\n")
	} else {
		for _, n := range r.Notes {
			mw.p("- %s\n", n)
		}
		mw.p("\n")
	}
	r.writeFaults(mw)
	r.writeTimeline(mw)
	r.writeWaits(mw)
	r.writeDefinitions(mw)
	return mw.err
}

type mdWriter struct {
	w   io.Writer
	err error
}

func (m *mdWriter) p(format string, a ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, a...)
	}
}

// cell escapes text for a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func (m *mdWriter) row(cells ...string) {
	for i := range cells {
		cells[i] = cell(cells[i])
	}
	m.p("| %s |\n", strings.Join(cells, " | "))
}

const bad = " ❌"

// mark appends the violation mark when v.
func mark(s string, v bool) string {
	if v {
		return s + bad
	}
	return s
}

// campaignFigure is one line of the invariants table.
type campaignFigure struct {
	label, rule string
	value       func(c CampaignRow) string
}

var campaignFigures = []campaignFigure{
	{"Stock", "configured", func(c CampaignRow) string { return fmt.Sprint(c.Stock) }},
	{"Store rows", "≤ stock", func(c CampaignRow) string { return mark(fmt.Sprint(c.Rows), c.Rows > c.Stock) }},
	{"Counter row: issued / stock", "issued = Store rows", func(c CampaignRow) string {
		if !c.CounterFound {
			return mark("no row", c.Rows > 0)
		}
		return mark(fmt.Sprintf("%d / %d", c.CounterIssued, c.CounterStock), c.CounterIssued != c.Rows)
	}},
	{"Users holding a unit", "", func(c CampaignRow) string { return fmt.Sprint(c.Holders) }},
	{"Users over the per-user limit", "0", func(c CampaignRow) string {
		return mark(fmt.Sprintf("%d (limit %d)", c.OverLimitUsers, c.PerUserLimit), c.OverLimitUsers > 0)
	}},
	{"Repeated issuance IDs", "0", func(c CampaignRow) string { return mark(fmt.Sprint(c.DuplicateIDs), c.DuplicateIDs > 0) }},
	{"Clients / accepted (202)", "", func(c CampaignRow) string { return fmt.Sprintf("%d / %d", c.Clients, c.Accepted) }},
	{"Told issued", "", func(c CampaignRow) string { return fmt.Sprint(c.ToldIssued) }},
	{"Told rejected, by reason", "", func(c CampaignRow) string {
		if s := countsText(c.Rejected, ""); s != "" {
			return s
		}
		return "0"
	}},
	{"Lost: ended on not_found", "0", func(c CampaignRow) string {
		n := c.LostByFinal["not_found"]
		return mark(fmt.Sprint(n), n > 0)
	}},
	{"Lost: no outcome at the end", "0", func(c CampaignRow) string {
		n := c.Lost - c.LostByFinal["not_found"]
		if n == 0 {
			return "0"
		}
		return mark(fmt.Sprintf("%d (%s)", n, countsText(c.LostByFinal, "not_found")), true)
	}},
	{"Lost users holding a unit anyway", "info", func(c CampaignRow) string { return fmt.Sprint(c.LostHolding) }},
	{"Clients a poll ever answered not_found", "info", func(c CampaignRow) string { return fmt.Sprint(c.NotFoundSeen) }},
	{"Told issued, holds nothing", "0", func(c CampaignRow) string { return mark(fmt.Sprint(c.IssuedNoRow), c.IssuedNoRow > 0) }},
	{"Told issued, issuance ID differs", "0", func(c CampaignRow) string {
		return mark(fmt.Sprint(c.IssuedIDMismatch), c.IssuedIDMismatch > 0)
	}},
	{"Told rejected (not duplicate), holds a unit", "0", func(c CampaignRow) string {
		return mark(fmt.Sprint(c.RejectedHolding), c.RejectedHolding > 0)
	}},
	{"Inversions: told sold out, a user admitted after them holds a unit", "0", func(c CampaignRow) string {
		if c.Shards > 1 {
			return mark(fmt.Sprintf("%d (%d sub-lines: admitted > %v after the 202)", c.Inversions, c.Shards, c.OrderBound), c.Inversions > 0)
		}
		return mark(fmt.Sprintf("%d (one line: by entry number)", c.Inversions), c.Inversions > 0)
	}},
	{"Told sold out, a unit holder admitted ≤ the bound after their 202", "info (sub-lines)", func(c CampaignRow) string {
		if c.Shards <= 1 {
			return "-"
		}
		return fmt.Sprint(c.InversionsWithinBound)
	}},
	{"Holds a unit, no 202 reached the user", "info", func(c CampaignRow) string { return fmt.Sprint(c.HeldUnannounced) }},
	{"Topic messages / distinct users", "", func(c CampaignRow) string { return fmt.Sprintf("%d / %d", c.Messages, c.DispatchedUsers) }},
	{"Redeliveries", "info", func(c CampaignRow) string { return fmt.Sprint(c.Redeliveries) }},
	{"Accepted, never on the topic", "info", func(c CampaignRow) string { return fmt.Sprint(c.NotDispatched) }},
	{"Issued without passing the topic", "0", func(c CampaignRow) string {
		return mark(fmt.Sprint(c.RowsNotOnTopic), c.RowsNotOnTopic > 0)
	}},
	{"Topic: most messages in 1 Interval", "≤ 2×BatchSize", func(c CampaignRow) string {
		if c.Bound == 0 {
			return "-"
		}
		return mark(fmt.Sprintf("%d (≤ %d; BatchSize %d, Interval %v) at %s", c.TopicMax1, 2*c.BatchSize, c.BatchSize, c.Interval, clock(c.TopicMax1At)), c.TopicMax1 > 2*c.BatchSize)
	}},
	{"Topic: most messages in 10 Intervals", "≤ 11×BatchSize", func(c CampaignRow) string {
		if c.Bound == 0 {
			return "not checked"
		}
		return mark(fmt.Sprintf("%d (≤ %d) at %s", c.TopicMax10, c.Bound, clock(c.TopicMax10At)), c.TopicMax10 > c.Bound)
	}},
	{"Store: most rows issued in 1 Interval", "≤ 2×BatchSize + MaxInFlight (info when the flight is unbounded)", func(c CampaignRow) string {
		if c.Bound == 0 {
			return "-"
		}
		if c.MaxInFlight == 0 {
			return fmt.Sprintf("%d at %s", c.StoreMax1, clock(c.StoreMax1At))
		}
		b := 2*c.BatchSize + c.MaxInFlight
		return mark(fmt.Sprintf("%d (≤ %d) at %s", c.StoreMax1, b, clock(c.StoreMax1At)), c.StoreMax1 > b)
	}},
	{"Store: most rows issued in 10 Intervals", "≤ 11×BatchSize + MaxInFlight (unbounded flight: or a fault's catch-up)", func(c CampaignRow) string {
		if c.Bound == 0 {
			return "not checked"
		}
		s := fmt.Sprintf("%d (≤ %d) at %s", c.StoreMax10, c.StoreBound, clock(c.StoreMax10At))
		switch {
		case c.StoreUnexcused > 0:
			return s + bad
		case c.StoreExcused > 0:
			return s + " (catch-up after a fault, see notes)"
		}
		return s
	}},
}

func (r *Report) writeCampaigns(m *mdWriter) {
	m.p("### Invariants per campaign\n\n")
	if len(r.Campaigns) == 0 {
		m.p("No campaigns.\n\n")
		return
	}
	head := []string{"Figure", "Must be"}
	sep := []string{"---", "---"}
	for _, c := range r.Campaigns {
		head = append(head, c.ID)
		sep = append(sep, "---:")
	}
	m.row(head...)
	m.p("|%s|\n", strings.Join(sep, "|"))
	for _, f := range campaignFigures {
		cells := []string{f.label, f.rule}
		for _, c := range r.Campaigns {
			cells = append(cells, f.value(c))
		}
		m.row(cells...)
	}
	m.p("\nTopic: %d partitions, %d messages read", r.Topic.Partitions, r.Topic.Messages)
	if r.Topic.Undecodable > 0 {
		m.p(", %d undecodable", r.Topic.Undecodable)
	}
	if r.Topic.OtherCampaigns > 0 {
		m.p(", %d of unconfigured campaigns", r.Topic.OtherCampaigns)
	}
	m.p(". ❌ marks a broken invariant; \"info\" figures are not checked.\n\n")
}

func (r *Report) writeFaults(m *mdWriter) {
	m.p("### Recovery per fault\n\n")
	if len(r.Faults) == 0 {
		m.p("No faults were injected.\n\n")
		return
	}
	m.row("#", "Fault", "Start", "Down for", fmt.Sprintf("Recovery (lag ≤ %v)", r.RecoveredLag), "Max lag [S−5s, E+30s]", "Longest dispatch gap [S, E+30s]", "Admission gap [S, E+10s]", "Killed api back")
	m.p("|---:|---|---|---:|---|---|---|---|---|\n")
	for _, f := range r.Faults {
		name := f.Fault.Kind + " " + f.Fault.Target
		if f.Fault.Note != "" {
			name += " (" + f.Fault.Note + ")"
		}
		down := "-"
		if !f.Fault.End.IsZero() {
			down = dur(f.Fault.End.Sub(f.Fault.Start)).String()
		}
		m.row(fmt.Sprint(f.Index), name, clock(f.Fault.Start), down, recoveryText(f), lagText(f), gapText(f), admissionText(f), apiText(f))
	}
	m.p("\n")
}

// writeTimeline is the "where recovery time went" table: each fault's
// hand-over steps, as seconds after its Start.
func (r *Report) writeTimeline(m *mdWriter) {
	if len(r.Faults) == 0 {
		return
	}
	m.p("### Where recovery time went\n\n")
	m.p("Seconds after each fault's start: when it was undone (process back and ready, proxy healed, broker started), when a worker's consumer was last assigned partitions, when a scheduler took the lead, when dispatch resumed after a gap of a second or more, and when the recovery began (lag ≤ %v from then on). *After the end* is the recovery less the time the fault lasted: the target is ≤ 5 s there, and for a killed issuer or leader ≤ 5 s after the kill itself.\n\n", r.RecoveredLag)
	m.row("#", "Fault", "Undone", "Partitions assigned", "Lead taken", "Dispatch resumed", "Lag ≤ "+r.RecoveredLag.String(), "After the end", "Held for")
	m.p("|---:|---|--:|---|---|--:|--:|--:|--:|\n")
	for _, f := range r.Faults {
		since := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return fmt.Sprintf("%.2f s", t.Sub(f.Fault.Start).Seconds())
		}
		who := func(t time.Time, proc string) string {
			if t.IsZero() {
				return "-"
			}
			return since(t) + " (" + proc + ")"
		}
		undone, rec, after, hold := "-", "-", "-", "-"
		if !f.Fault.End.IsZero() {
			undone = since(f.Fault.End)
		}
		if f.Recovered {
			rec = since(f.RecoveredAt)
			after = fmt.Sprintf("%.2f s", f.RecoveredAt.Sub(faultEnd(f.Fault)).Seconds())
			hold = dur(f.Hold).String()
		}
		m.row(fmt.Sprint(f.Index), f.Fault.Kind+" "+f.Fault.Target, undone, who(f.Assigned, f.AssignedProc),
			who(f.Leads, f.LeadsProc), since(f.Resumed), rec, after, hold)
	}
	m.p("\n")
}

func recoveryText(f FaultRow) string {
	switch {
	case f.NoTraffic && f.LastSample.IsZero():
		return "no traffic after the fault (no samples at all)"
	case f.NoTraffic:
		return fmt.Sprintf("no traffic after the fault (last sample dispatched %s)", clock(f.LastSample))
	case !f.Recovered:
		return fmt.Sprintf("not recovered (%d samples dispatched after the start)", f.SamplesAfter)
	}
	return fmt.Sprintf("%v (at %s)", dur(f.Recovery), clock(f.RecoveredAt))
}

func lagText(f FaultRow) string {
	switch {
	case f.LagSamples == 0:
		return "no samples"
	case f.Undecided > 0:
		s := fmt.Sprintf("∞: %d of %d samples undecided", f.Undecided, f.LagSamples)
		if f.Undecided < f.LagSamples {
			s += fmt.Sprintf("; decided ones ≤ %v", dur(f.MaxLag))
		}
		return s
	}
	return fmt.Sprintf("%v (%d samples)", dur(f.MaxLag), f.LagSamples)
}

func gapText(f FaultRow) string {
	var s string
	if f.DispatchMessages == 0 && f.DispatchGap == 0 {
		s = "no messages"
	} else {
		s = fmt.Sprintf("%v from %s (%d messages)", dur(f.DispatchGap), clock(f.DispatchGapAt), f.DispatchMessages)
	}
	if f.TopicEnded {
		s += fmt.Sprintf("; the topic's last message was at %s", clock(f.LastMessage))
	}
	return s
}

func admissionText(f FaultRow) string {
	switch {
	case f.Presses == 0:
		return "no presses"
	case f.FailedPresses == 0:
		return fmt.Sprintf("0 (%d presses, none failed)", f.Presses)
	}
	s := fmt.Sprintf("%v from %s (%d of %d presses failed)", dur(f.AdmissionGap), clock(f.AdmissionGapAt), f.FailedPresses, f.Presses)
	if f.AdmissionOpenEnded {
		s += "; no press was answered after it"
	}
	return s
}

func apiText(f FaultRow) string {
	if f.API == 0 {
		return "-"
	}
	if !f.APIBack {
		return fmt.Sprintf("api-%d answered no press after the end", f.API)
	}
	return fmt.Sprintf("api-%d: %v after the end", f.API, dur(f.APIBackAfter))
}

func (r *Report) writeDefinitions(m *mdWriter) {
	m.p("### How each figure is computed\n\n")
	for _, d := range []string{
		"**Store rows**: rows of `couponq_issuances` for the campaign, read with plain SQL in one read-only snapshot. More rows than the configured stock is an over-issue.",
		"**Counter row**: `couponq_counters.issued` must equal the Store rows; a missing counter row with rows present is a violation.",
		"**Per-user limit**: users with more rows than PerUserLimit (1 when unset). **Repeated issuance IDs**: rows whose `id` an earlier row of any campaign already has.",
		"**Clients** are the crowd's records (one per user); **accepted** means some press was answered 202. **Lost** is an accepted client whose last status was not terminal (`issued` or `rejected:<reason>`): split into `not_found` (the line forgot the entry) and the rest (`waiting`, `in_flight`, `unknown`: no outcome when the run ended).",
		"**Told issued, holds nothing**: final status `issued` and no Store row for (campaign, user). **Issuance ID differs**: final status `issued` with an issuance ID that none of the user's rows has. **Told rejected, holds a unit**: final `rejected:<reason>` other than `rejected:duplicate` while the user holds a row.",
		fmt.Sprintf("**Inversions**: accepted users told `rejected:sold_out` while a user admitted after them holds a unit, each counted once. Users refused at the door (`sold_out` without a 202) were never in line and do not count; neither do users who hold a unit themselves (they are *told rejected, holds a unit*). On one line (Shards ≤ 1) the order is the entry number: a sold-out user's is the one their 202 carried, a unit's is the entry in its Store row's idempotency key (`campaign/entry/user`; `n` only numbers the user's units), and a sold-out user below the highest entry number holding a unit is an inversion. Over sub-lines entry numbers interleave (sub-line k's m-th entry is m×N+k), so the order is admission time, which the scheduler's merge follows for entries that are in their sub-lines and older than its watermark, up to the 10 ms resolution of admission times: a sold-out user A counts when a unit holder B was admitted more than the bound after A's 202 arrived, B's admission time taken from its topic message (`admitted_at_us`) and A's 202 time from the crowd's clock. A's entry was in its sub-line before its 202 was sent, so by the time B's was old enough to be moved, A's was too and older: only the resolution and clocks can order B first. The bound is %v (10 ms resolution + 5 ms for clocks, unless the run set another). **Told sold out, a unit holder admitted ≤ the bound after their 202** (informational, sub-lines): sold-out users with a holder admitted after their 202 but within the bound, whose order the merge does not promise.", r.OrderBound),
		"**Holds a unit, no 202 reached the user**: Store rows of users with no accepted client (the answer was lost, e.g. the api died mid-answer). Informational.",
		"**Topic**: every message from the start of each partition to its high watermark at the time of the check, decoded as JSON `{\"v\":1,...}` by the checker itself. **Redeliveries**: messages beyond the first for the same (campaign, user, entry). **Issued without passing the topic**: a user holding a Store row who never appears on the topic.",
		"**Most in 1 / 10 Intervals**: the largest number of timestamps in any half-open window [t, t+Interval) or [t, t+10×Interval), found with a two-pointer sweep over the sorted times (the topic's record timestamps, or the Store's `issued_at`). On the topic the 10-Interval figure must be at most 11×BatchSize (ten ticks plus one for the window's phase) and the 1-Interval figure at most 2×BatchSize (a tick delayed by a few ms puts two ticks in one window). In the Store both may exceed those by the campaign's MaxInFlight, no more. The Store's 10-Interval figure may exceed that by the campaign's MaxInFlight (the scheduler's bound on entries handed downstream and not yet decided, which is what consumers can catch up at once after an outage), and any excess over it is a violation; a campaign run without that bound gets the old allowance instead: a Store window over 11×BatchSize that overlaps [Start, End+15s] of a fault is consumers catching up a backlog (a note), anywhere else a violation. Topic windows over the bound are always violations.",
		"**Lag** of a sample: DecidedAt − DispatchedAt (the Kafka record timestamp to the first terminal status poll); an undecided sample has infinite lag.",
		"**Recovery**: the earliest dispatch time D at or after the fault's Start such that every sample dispatched in [D, D+10s] was decided with lag ≤ the recovered lag (the window ends at the next fault's Start less the recovered lag when that comes first: a sample dispatched later would have been decided only after the next fault hit; a window cut to less than 2s does not count; *Held for* in the timeline says how long it ran); recovery = D − Start. \"No traffic after the fault\" when no sample was dispatched after Start (the campaigns were already empty or dispatch stopped: see Lost).",
		"**Max lag**: over the samples dispatched in [Start−5s, End+30s]; ∞ when any of them was never decided.",
		"**Longest dispatch gap**: the longest time between two consecutive topic messages (all campaigns), clipped to [Start, End+30s]. Silence after the topic's last message is not a gap between two messages and is not counted; the table says when the topic ended inside the window.",
		"**Timeline** (where recovery time went): *Partitions assigned* is the last `partitions assigned` line of any worker's log in [Start, D+5s] (and before the next fault), *Lead taken* the first `scheduler leads` line in [Start, next fault), both by the worker's own clock; *Dispatch resumed* is the topic message that ended the longest dispatch gap of [Start, End+30s] when that gap began by End and lasted 1 s or more.",
		"**Admission gap**: presses sorted by answer time; a press failed when its outcome was `transport` (no answer) or `http_5xx`. For every run of failed presses with one inside [Start, End+10s], the stretch from the last answered press before it to the first answered press after it (any api); the longest is shown, 0 when no press failed. **Killed api back**: for kill-api faults, the time from End to the first press that api answered.",
	} {
		m.p("- %s\n", d)
	}
	m.p("\n")
}
