package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// storeRow is one couponq_issuances row. N numbers the user's units (1,
// 2, ... up to the per-user limit), not the line: the entry the unit went
// to is in Key, the idempotency key "campaign/entry/user".
type storeRow struct {
	User     string
	N        int64
	Key      string
	ID       string
	IssuedAt time.Time
}

// counterRow is one couponq_counters row.
type counterRow struct {
	Issued, Stock int64
}

// storeCampaign is what the Store holds for one campaign. Counter is nil
// when the campaign has no counter row.
type storeCampaign struct {
	Rows    []storeRow
	Counter *counterRow
}

// storeData is the Store as read, by campaign.
type storeData struct {
	Campaigns map[string]storeCampaign
}

// topicMsg is one decoded topic message.
type topicMsg struct {
	Campaign, User string
	Entry          int64
	At             time.Time // the record's timestamp
	AdmittedAt     time.Time // the entry's admission time (admitted_at_us); zero if absent
	Partition      int32
	Offset         int64
}

// topicData is the topic as read.
type topicData struct {
	Partitions int
	Messages   []topicMsg
	// Undecodable counts messages that are not version-1 JSON entries;
	// UndecodableExamples keeps a few, as "partition/offset: reason".
	Undecodable         int
	UndecodableExamples []string
}

// maxExamples bounds the example lists in violations and notes.
const maxExamples = 5

// examples collects up to maxExamples strings and counts the rest.
type examples struct {
	list []string
	more int
}

func (e *examples) add(s string) {
	if len(e.list) < maxExamples {
		e.list = append(e.list, s)
	} else {
		e.more++
	}
}

func (e examples) String() string {
	if len(e.list) == 0 {
		return ""
	}
	s := "e.g. " + strings.Join(e.list, ", ")
	if e.more > 0 {
		s += fmt.Sprintf(" and %d more", e.more)
	}
	return s
}

type userKey struct{ campaign, user string }

// evaluate checks every invariant over what was read. It is pure: no I/O.
func evaluate(in Inputs, store storeData, topic topicData) *Report {
	r := &Report{RecoveredLag: in.RecoveredLag, OrderBound: in.OrderBound}
	if r.RecoveredLag <= 0 {
		r.RecoveredLag = defaultRecoveredLag
	}
	if r.OrderBound <= 0 {
		r.OrderBound = admissionResolution + clockAllowance
	}
	violate := func(format string, a ...any) { r.Violations = append(r.Violations, fmt.Sprintf(format, a...)) }
	note := func(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

	configured := make(map[string]bool, len(in.Campaigns))
	for _, c := range in.Campaigns {
		configured[c.ID] = true
	}

	// The topic, indexed.
	r.Topic = TopicSummary{Partitions: topic.Partitions, Messages: len(topic.Messages), Undecodable: topic.Undecodable}
	byCampaign := map[string][]topicMsg{}
	onTopic := map[userKey]bool{}
	var allTimes []time.Time
	untimed := 0
	for _, m := range topic.Messages {
		if !configured[m.Campaign] {
			r.Topic.OtherCampaigns++
		}
		byCampaign[m.Campaign] = append(byCampaign[m.Campaign], m)
		onTopic[userKey{m.Campaign, m.User}] = true
		if m.At.IsZero() {
			untimed++
			continue
		}
		allTimes = append(allTimes, m.At)
	}
	allTimes = sortTimes(allTimes)
	if topic.Undecodable > 0 {
		note("topic: %d messages could not be decoded as version-1 entries and were left out (%s)", topic.Undecodable, strings.Join(topic.UndecodableExamples, "; "))
	}
	if r.Topic.OtherCampaigns > 0 {
		note("topic: %d messages belong to campaigns the run did not configure", r.Topic.OtherCampaigns)
	}
	if untimed > 0 {
		note("topic: %d messages carry no timestamp and are left out of the throttle and gap figures", untimed)
	}

	// Clients, by campaign.
	clientsOf := map[string][]Client{}
	otherClients := 0
	for _, c := range in.Clients {
		if !configured[c.Campaign] {
			otherClients++
		}
		clientsOf[c.Campaign] = append(clientsOf[c.Campaign], c)
	}
	if otherClients > 0 {
		note("clients: %d client records name campaigns the run did not configure; they are not checked", otherClients)
	}

	seenID := map[string]userKey{}
	for _, c := range in.Campaigns {
		row := CampaignRow{
			ID: c.ID, Stock: c.Stock, BatchSize: c.BatchSize, Interval: c.Interval, PerUserLimit: max(c.PerUserLimit, 1), MaxInFlight: c.MaxInFlight, Shards: max(c.Shards, 1),
			Rejected: map[string]int{}, LostByFinal: map[string]int{},
		}
		sc := store.Campaigns[c.ID]

		// 1. Over-issue and the counter.
		row.Rows = int64(len(sc.Rows))
		if row.Rows > c.Stock {
			violate("campaign %s: over-issue: %d Store rows for a stock of %d", c.ID, row.Rows, c.Stock)
		}
		if sc.Counter != nil {
			row.CounterFound, row.CounterIssued, row.CounterStock = true, sc.Counter.Issued, sc.Counter.Stock
			if sc.Counter.Issued != row.Rows {
				violate("campaign %s: counter row says issued %d but the Store holds %d rows", c.ID, sc.Counter.Issued, row.Rows)
			}
			if sc.Counter.Stock != c.Stock {
				note("campaign %s: the counter row's stock is %d, the run configured %d", c.ID, sc.Counter.Stock, c.Stock)
			}
		} else if row.Rows > 0 {
			violate("campaign %s: no counter row, but the Store holds %d rows", c.ID, row.Rows)
		}

		// 2. Per-user holdings and unique IDs.
		holdings := map[string][]storeRow{}
		var dupIDs examples
		for _, s := range sc.Rows {
			holdings[s.User] = append(holdings[s.User], s)
			k := userKey{c.ID, s.User}
			if prev, dup := seenID[s.ID]; dup {
				row.DuplicateIDs++
				dupIDs.add(fmt.Sprintf("%q (%s/%s and %s/%s)", s.ID, prev.campaign, prev.user, c.ID, s.User))
			} else {
				seenID[s.ID] = k
			}
		}
		row.Holders = len(holdings)
		var over examples
		for _, u := range slices.Sorted(maps.Keys(holdings)) {
			if n := len(holdings[u]); n > row.PerUserLimit {
				row.OverLimitUsers++
				over.add(fmt.Sprintf("%s holds %d", u, n))
			}
		}
		row.OverLimitExamples = over.list
		if row.OverLimitUsers > 0 {
			violate("campaign %s: %d users hold more than the per-user limit of %d (%s)", c.ID, row.OverLimitUsers, row.PerUserLimit, over)
		}
		if row.DuplicateIDs > 0 {
			violate("campaign %s: %d Store rows repeat an issuance ID another row already has (%s)", c.ID, row.DuplicateIDs, dupIDs)
		}

		// 3 and 4. Clients: lost, and what they were told against the Store.
		accepted := map[string]bool{}
		var lostNF, lostOther, issuedNoRow, idMismatch, rejHolding, notDispatched examples
		for _, cl := range clientsOf[c.ID] {
			row.Clients++
			held := holdings[cl.User]
			if cl.Accepted {
				row.Accepted++
				accepted[cl.User] = true
				if !onTopic[userKey{c.ID, cl.User}] {
					row.NotDispatched++
					notDispatched.add(cl.User)
				}
			}
			if cl.NotFoundSeen {
				row.NotFoundSeen++
			}
			switch {
			case cl.Final == "issued":
				row.ToldIssued++
				if len(held) == 0 {
					row.IssuedNoRow++
					issuedNoRow.add(cl.User)
				} else if !slices.ContainsFunc(held, func(s storeRow) bool { return s.ID == cl.IssuanceID }) {
					row.IssuedIDMismatch++
					ids := make([]string, len(held))
					for i, s := range held {
						ids[i] = s.ID
					}
					idMismatch.add(fmt.Sprintf("%s told %q, Store has %s", cl.User, cl.IssuanceID, strings.Join(ids, "/")))
				}
			case cl.Terminal(): // rejected:<reason>
				reason := strings.TrimPrefix(cl.Final, "rejected:")
				row.Rejected[reason]++
				if reason != "duplicate" && len(held) > 0 {
					row.RejectedHolding++
					rejHolding.add(fmt.Sprintf("%s (%s)", cl.User, reason))
				}
			}
			if cl.Accepted && !cl.Terminal() {
				row.Lost++
				final := cl.Final
				if final == "" {
					final = "(none)"
				}
				row.LostByFinal[final]++
				ex := cl.User
				if len(held) > 0 {
					row.LostHolding++
					ex += " (holds a unit)"
				}
				if final == "not_found" {
					lostNF.add(ex)
				} else {
					lostOther.add(ex + " " + final)
				}
			}
		}
		if n := row.LostByFinal["not_found"]; n > 0 {
			violate("campaign %s: lost: %d accepted users ended on not_found (the line no longer knew the entry their 202 promised) (%s)", c.ID, n, lostNF)
		}
		if n := row.Lost - row.LostByFinal["not_found"]; n > 0 {
			violate("campaign %s: lost: %d accepted users had no outcome when the run ended (%s; %s)", c.ID, n, countsText(row.LostByFinal, "not_found"), lostOther)
		}
		if row.IssuedNoRow > 0 {
			violate("campaign %s: told issued, holds nothing: %d users were told issued and hold no Store row (%s)", c.ID, row.IssuedNoRow, issuedNoRow)
		}
		if row.IssuedIDMismatch > 0 {
			violate("campaign %s: told issued with an issuance ID none of the user's Store rows has: %d users (%s)", c.ID, row.IssuedIDMismatch, idMismatch)
		}
		if row.RejectedHolding > 0 {
			violate("campaign %s: told rejected, holds a unit: %d users (%s)", c.ID, row.RejectedHolding, rejHolding)
		}
		var unannounced examples
		for _, u := range slices.Sorted(maps.Keys(holdings)) {
			if !accepted[u] {
				row.HeldUnannounced++
				unannounced.add(u)
			}
		}
		if row.HeldUnannounced > 0 {
			note("campaign %s: %d users hold a unit though no 202 reached them (e.g. the api died mid-answer, or the crowd gave up on the press) (%s)", c.ID, row.HeldUnannounced, unannounced)
		}

		// 5. Topic vs Store.
		msgs := byCampaign[c.ID]
		row.Messages = len(msgs)
		users := map[string]bool{}
		entries := map[userEntry]int{}
		for _, m := range msgs {
			users[m.User] = true
			entries[userEntry{m.User, m.Entry}]++
		}
		row.DispatchedUsers = len(users)
		row.Redeliveries = len(msgs) - len(entries)
		var notOnTopic examples
		for _, u := range slices.Sorted(maps.Keys(holdings)) {
			if !users[u] {
				row.RowsNotOnTopic++
				notOnTopic.add(u)
			}
		}
		if row.RowsNotOnTopic > 0 {
			violate("campaign %s: issued without passing the topic: %d users hold a Store row but never appear on the topic (%s)", c.ID, row.RowsNotOnTopic, notOnTopic)
		}
		if row.Redeliveries > 0 {
			var redelivered examples
			for _, k := range slices.SortedFunc(maps.Keys(entries), func(a, b userEntry) int {
				return cmp.Or(strings.Compare(a.user, b.user), cmp.Compare(a.entry, b.entry))
			}) {
				if n := entries[k]; n > 1 {
					redelivered.add(fmt.Sprintf("%s#%d ×%d", k.user, k.entry, n))
				}
			}
			note("campaign %s: %d redeliveries: the same entry was on the topic more than once (at-least-once re-dispatch after a fault) (%s)", c.ID, row.Redeliveries, redelivered)
		}
		if row.NotDispatched > 0 {
			note("campaign %s: %d accepted users never appeared on the topic (%s)", c.ID, row.NotDispatched, notDispatched)
		}

		// 6. Inversions.
		if row.Shards > 1 {
			row.OrderBound = r.OrderBound
		}
		inversions(&row, clientsOf[c.ID], holdings, msgs, violate, note)

		// 7. Throttle.
		throttle(&row, msgs, sc.Rows, in.Faults, violate, note)

		r.Campaigns = append(r.Campaigns, row)
	}

	// 8. Recovery per fault.
	r.Faults = faultRows(in, allTimes, r.RecoveredLag)
	r.Waits = waitRows(in)
	for _, f := range r.Faults {
		if f.Fault.End.IsZero() {
			note("fault #%d (%s %s): no End recorded; its windows are taken from its Start", f.Index, f.Fault.Kind, f.Fault.Target)
		}
		if !f.Recovered && !f.NoTraffic {
			note("fault #%d (%s %s): not recovered: no sample dispatched after it opens 10 s in which every sample was decided within %v", f.Index, f.Fault.Kind, f.Fault.Target, r.RecoveredLag)
		}
	}
	return r
}

type userEntry struct {
	user  string
	entry int64
}

// countsText renders counts as "k1 n1, k2 n2" in key order, leaving out skip.
func countsText(m map[string]int, skip string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != skip && m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// throttle fills the row's throttle figures from the campaign's topic
// messages and Store rows, and reports what breaks the bound.
func throttle(row *CampaignRow, msgs []topicMsg, rows []storeRow, faults []Fault, violate, note func(string, ...any)) {
	if row.BatchSize <= 0 || row.Interval <= 0 {
		note("campaign %s: BatchSize %d / Interval %v: the throttle is not checked", row.ID, row.BatchSize, row.Interval)
		return
	}
	row.Bound = 11 * row.BatchSize
	row.StoreBound = row.Bound + row.MaxInFlight
	w1, w10 := row.Interval, 10*row.Interval

	var tt []time.Time
	for _, m := range msgs {
		if !m.At.IsZero() {
			tt = append(tt, m.At)
		}
	}
	tt = sortTimes(tt)
	row.TopicMax1, row.TopicMax1At = windowMax(tt, w1)
	row.TopicMax10, row.TopicMax10At = windowMax(tt, w10)
	if row.TopicMax10 > row.Bound {
		violate("campaign %s: dispatch throttle: %d messages on the topic in the 10×Interval window starting %s (bound 11×BatchSize = %d)", row.ID, row.TopicMax10, clock(row.TopicMax10At), row.Bound)
	}
	if row.TopicMax1 > 2*row.BatchSize {
		violate("campaign %s: dispatch throttle: %d messages on the topic in the Interval starting %s (bound 2×BatchSize = %d)", row.ID, row.TopicMax1, clock(row.TopicMax1At), 2*row.BatchSize)
	}

	st := make([]time.Time, len(rows))
	for i, s := range rows {
		st[i] = s.IssuedAt
	}
	st = sortTimes(st)
	row.StoreMax1, row.StoreMax1At = windowMax(st, w1)
	// With a bounded flight, one Interval may hold two ticks' worth plus
	// what was in flight; without one there is no bound for so short a
	// window (the 10-Interval rule below decides).
	if row.MaxInFlight > 0 && row.StoreMax1 > 2*row.BatchSize+row.MaxInFlight {
		violate("campaign %s: issue throttle: %d Store rows issued in the Interval starting %s (bound 2×BatchSize + MaxInFlight = %d)", row.ID, row.StoreMax1, clock(row.StoreMax1At), 2*row.BatchSize+row.MaxInFlight)
	}
	row.StoreMax10, row.StoreMax10At = windowMax(st, w10)

	// Every Store window over the bound: excused when it overlaps a fault's
	// [Start, End+catchUpGrace].
	var unexcused, excused struct {
		n     int
		at    time.Time
		fault int
	}
	sweep(st, w10, func(i, n int) {
		if n <= row.StoreBound {
			return
		}
		s := st[i]
		fi := -1
		for k, f := range faults {
			if row.MaxInFlight > 0 {
				break // a bounded flight excuses nothing
			}
			if !s.After(faultEnd(f).Add(catchUpGrace)) && s.Add(w10).After(f.Start) {
				fi = k
				break
			}
		}
		if fi < 0 {
			row.StoreUnexcused++
			if n > unexcused.n {
				unexcused.n, unexcused.at = n, s
			}
			return
		}
		row.StoreExcused++
		if n > excused.n {
			excused.n, excused.at, excused.fault = n, s, fi
		}
	})
	if row.StoreUnexcused > 0 {
		if row.MaxInFlight > 0 {
			violate("campaign %s: issue throttle: %d Store rows issued in the 10×Interval window starting %s (bound 11×BatchSize + MaxInFlight = %d)", row.ID, unexcused.n, clock(unexcused.at), row.StoreBound)
		} else {
			violate("campaign %s: issue throttle: %d Store rows issued in the 10×Interval window starting %s (bound 11×BatchSize = %d), not within %v after any fault's end", row.ID, unexcused.n, clock(unexcused.at), row.Bound, catchUpGrace)
		}
	}
	if row.StoreExcused > 0 {
		f := faults[excused.fault]
		note("campaign %s: Store issued up to %d rows in the 10×Interval window starting %s (bound %d), %s of fault #%d (%s %s): consumers catching up the backlog queued while they were cut off; tolerated",
			row.ID, excused.n, clock(excused.at), row.Bound, relative(excused.at, f), excused.fault+1, f.Kind, f.Target)
	}
}

// relative says where t lies against the fault: "during" or "3.2s after the end".
func relative(t time.Time, f Fault) string {
	end := faultEnd(f)
	switch {
	case t.Before(f.Start):
		return fmt.Sprintf("%v before the start", dur(f.Start.Sub(t)))
	case t.Before(end):
		return "during"
	default:
		return fmt.Sprintf("%v after the end", dur(t.Sub(end)))
	}
}

// clock formats an instant for the report.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

// dur rounds a duration for the report.
func dur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second || d <= -10*time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
