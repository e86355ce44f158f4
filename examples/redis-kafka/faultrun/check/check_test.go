package check

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// fixture is a small clean run of one campaign: stock 5, BatchSize 2 per
// 100 ms; u1..u5 accepted (entries 1001..1005) and dispatched two per
// tick; u1..u3 issued, u4 and u5 rejected sold_out.
type fixture struct {
	in    Inputs
	store storeData
	topic topicData
}

func cleanFixture() *fixture {
	f := &fixture{
		in: Inputs{Campaigns: []Campaign{{ID: "c1", Stock: 5, BatchSize: 2, Interval: 100 * time.Millisecond}}},
	}
	var rows []storeRow
	for i := 1; i <= 5; i++ {
		u := fmt.Sprintf("u%d", i)
		dispatched := at(100 * ((i - 1) / 2)) // ticks at 0, 100, 200 ms
		entry := int64(1000 + i)
		cl := Client{User: u, Campaign: "c1", Presses: 1, Accepted: true, AcceptedAt: at(-1000), Entry: entry, API: 1}
		if i <= 3 {
			cl.Final, cl.IssuanceID = "issued", "id"+u
			rows = append(rows, storeRow{User: u, N: 1, Key: fmt.Sprintf("c1/%d/%s", entry, u), ID: "id" + u, IssuedAt: dispatched.Add(20 * time.Millisecond)})
		} else {
			cl.Final = "rejected:sold_out"
		}
		f.in.Clients = append(f.in.Clients, cl)
		f.topic.Messages = append(f.topic.Messages, topicMsg{Campaign: "c1", User: u, Entry: entry, At: dispatched, AdmittedAt: at(-1000), Offset: int64(i - 1)})
	}
	f.topic.Partitions = 1
	f.store = storeData{Campaigns: map[string]storeCampaign{"c1": {Rows: rows, Counter: &counterRow{Issued: 3, Stock: 5}}}}
	return f
}

func (f *fixture) client(user string) *Client {
	for i := range f.in.Clients {
		if f.in.Clients[i].User == user {
			return &f.in.Clients[i]
		}
	}
	panic("no client " + user)
}

func (f *fixture) c1() *storeCampaign {
	sc := f.store.Campaigns["c1"]
	return &sc
}

func (f *fixture) setC1(sc *storeCampaign) { f.store.Campaigns["c1"] = *sc }

// burst adds n users with messages (and, when issue, Store rows and
// accepted issued clients) starting at start, spaced by step. Their entries,
// 100 on, come before the fixture's users'.
func (f *fixture) burst(prefix string, n int, start time.Time, step time.Duration, issue bool) {
	sc := f.c1()
	for i := range n {
		u := fmt.Sprintf("%s%d", prefix, i)
		t := start.Add(time.Duration(i) * step)
		f.topic.Messages = append(f.topic.Messages, topicMsg{Campaign: "c1", User: u, Entry: int64(100 + i), At: t})
		if issue {
			sc.Rows = append(sc.Rows, storeRow{User: u, N: 1, Key: fmt.Sprintf("c1/%d/%s", 100+i, u), ID: "id" + u, IssuedAt: t})
			sc.Counter.Issued++
			f.in.Clients = append(f.in.Clients, Client{User: u, Campaign: "c1", Accepted: true, Final: "issued", IssuanceID: "id" + u})
		}
	}
	if issue {
		f.in.Campaigns[0].Stock += int64(n)
		sc.Counter.Stock += int64(n)
	}
	f.setC1(sc)
}

// issue gives user a unit: told issued, and a Store row for its entry (no
// idempotency key when keyless).
func (f *fixture) issue(user string, keyless bool) {
	c := f.client(user)
	c.Final, c.IssuanceID = "issued", "id"+user
	sc := f.c1()
	key := fmt.Sprintf("c1/%d/%s", c.Entry, user)
	if keyless {
		key = "c1/" + user
	}
	sc.Rows = append(sc.Rows, storeRow{User: user, N: 1, Key: key, ID: "id" + user, IssuedAt: at(300)})
	sc.Counter.Issued++
	f.setC1(sc)
}

// shard makes c1 a campaign of two sub-lines whose holders u1 and u2 were
// admitted long before everyone's 202 (at -1000 ms), and u3 at ms: u4 and
// u5, told sold out, are the ones that may be inverted against u3.
func (f *fixture) shard(ms int) {
	f.in.Campaigns[0].Shards = 2
	for i := range f.topic.Messages {
		m := &f.topic.Messages[i]
		switch m.User {
		case "u1", "u2":
			m.AdmittedAt = at(-2000)
		case "u3":
			m.AdmittedAt = at(ms)
		}
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *fixture)
		// want: one substring per expected violation, in order; exactly
		// these violations must be reported.
		want []string
		// row checks the campaign row's figures.
		row func(t *testing.T, c CampaignRow)
		// notes: substrings that must appear among the notes.
		notes []string
	}{
		{
			name: "clean",
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Rows", c.Rows, 3)
				eq(t, "ToldIssued", c.ToldIssued, 3)
				eq(t, "Rejected[sold_out]", c.Rejected["sold_out"], 2)
				eq(t, "Accepted", c.Accepted, 5)
				eq(t, "Messages", c.Messages, 5)
				eq(t, "DispatchedUsers", c.DispatchedUsers, 5)
				eq(t, "Lost", c.Lost, 0)
				eq(t, "Bound", c.Bound, 22)
				eq(t, "TopicMax1", c.TopicMax1, 2)
				eq(t, "TopicMax10", c.TopicMax10, 5)
				eq(t, "Shards", c.Shards, 1)
				eq(t, "Inversions", c.Inversions, 0)
			},
		},
		{
			name: "over-issue",
			mutate: func(f *fixture) {
				f.in.Campaigns[0].Stock = 2
				sc := f.c1()
				sc.Counter.Stock = 2
				f.setC1(sc)
			},
			want: []string{"campaign c1: over-issue: 3 Store rows for a stock of 2"},
		},
		{
			name: "counter disagrees with rows",
			mutate: func(f *fixture) {
				sc := f.c1()
				sc.Counter = &counterRow{Issued: 2, Stock: 5}
				f.setC1(sc)
			},
			want: []string{"campaign c1: counter row says issued 2 but the Store holds 3 rows"},
		},
		{
			name: "no counter row",
			mutate: func(f *fixture) {
				sc := f.c1()
				sc.Counter = nil
				f.setC1(sc)
			},
			want: []string{"campaign c1: no counter row, but the Store holds 3 rows"},
			row:  func(t *testing.T, c CampaignRow) { eq(t, "CounterFound", c.CounterFound, false) },
		},
		{
			name: "user over the per-user limit",
			mutate: func(f *fixture) {
				sc := f.c1()
				sc.Rows = append(sc.Rows, storeRow{User: "u1", N: 2, ID: "idu1b", IssuedAt: at(250)})
				sc.Counter.Issued = 4
				f.setC1(sc)
			},
			want: []string{"campaign c1: 1 users hold more than the per-user limit of 1 (e.g. u1 holds 2)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "OverLimitUsers", c.OverLimitUsers, 1)
				eq(t, "OverLimitExamples", strings.Join(c.OverLimitExamples, ","), "u1 holds 2")
			},
		},
		{
			name: "two units within a per-user limit of 2",
			mutate: func(f *fixture) {
				f.in.Campaigns[0].PerUserLimit = 2
				sc := f.c1()
				sc.Rows = append(sc.Rows, storeRow{User: "u1", N: 2, ID: "idu1b", IssuedAt: at(250)})
				sc.Counter.Issued = 4
				f.setC1(sc)
			},
			row: func(t *testing.T, c CampaignRow) { eq(t, "PerUserLimit", c.PerUserLimit, 2) },
		},
		{
			name: "repeated issuance ID",
			mutate: func(f *fixture) {
				sc := f.c1()
				sc.Rows[1].ID = "idu1"
				f.setC1(sc)
				f.client("u2").IssuanceID = "idu1"
			},
			want: []string{`campaign c1: 1 Store rows repeat an issuance ID another row already has (e.g. "idu1" (c1/u1 and c1/u2))`},
			row:  func(t *testing.T, c CampaignRow) { eq(t, "DuplicateIDs", c.DuplicateIDs, 1) },
		},
		{
			name: "lost on not_found",
			mutate: func(f *fixture) {
				c := f.client("u4")
				c.Final, c.NotFoundSeen = "not_found", true
			},
			want: []string{"campaign c1: lost: 1 accepted users ended on not_found (the line no longer knew the entry their 202 promised) (e.g. u4)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Lost", c.Lost, 1)
				eq(t, "LostByFinal[not_found]", c.LostByFinal["not_found"], 1)
				eq(t, "NotFoundSeen", c.NotFoundSeen, 1)
				eq(t, "Rejected[sold_out]", c.Rejected["sold_out"], 1)
			},
		},
		{
			name: "lost waiting and unknown, one holding a unit",
			mutate: func(f *fixture) {
				f.client("u4").Final = "waiting"
				f.client("u5").Final = "unknown"
				c := f.client("u3")
				c.Final, c.IssuanceID = "in_flight", ""
			},
			want: []string{"campaign c1: lost: 3 accepted users had no outcome when the run ended (in_flight 1, unknown 1, waiting 1; e.g. u3 (holds a unit) in_flight, u4 waiting, u5 unknown)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Lost", c.Lost, 3)
				eq(t, "LostHolding", c.LostHolding, 1)
				eq(t, "LostByFinal[waiting]", c.LostByFinal["waiting"], 1)
			},
		},
		{
			name: "not accepted and no outcome is not lost",
			mutate: func(f *fixture) {
				f.in.Clients = append(f.in.Clients, Client{User: "x", Campaign: "c1", Presses: 2, Door: "transport", Final: "unknown"})
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Clients", c.Clients, 6)
				eq(t, "Lost", c.Lost, 0)
			},
		},
		{
			name:   "told issued, holds nothing",
			mutate: func(f *fixture) { c := f.client("u4"); c.Final, c.IssuanceID = "issued", "idu4" },
			want:   []string{"campaign c1: told issued, holds nothing: 1 users were told issued and hold no Store row (e.g. u4)"},
			row:    func(t *testing.T, c CampaignRow) { eq(t, "IssuedNoRow", c.IssuedNoRow, 1) },
		},
		{
			name:   "told issued with another ID",
			mutate: func(f *fixture) { f.client("u2").IssuanceID = "other" },
			want:   []string{`campaign c1: told issued with an issuance ID none of the user's Store rows has: 1 users (e.g. u2 told "other", Store has idu2)`},
		},
		{
			name:   "told rejected sold_out, holds a unit",
			mutate: func(f *fixture) { c := f.client("u1"); c.Final, c.IssuanceID = "rejected:sold_out", "" },
			want:   []string{"campaign c1: told rejected, holds a unit: 1 users (e.g. u1 (sold_out))"},
			row:    func(t *testing.T, c CampaignRow) { eq(t, "RejectedHolding", c.RejectedHolding, 1) },
		},
		{
			name:   "told rejected duplicate while holding is fine",
			mutate: func(f *fixture) { c := f.client("u1"); c.Final, c.IssuanceID = "rejected:duplicate", "" },
			row:    func(t *testing.T, c CampaignRow) { eq(t, "Rejected[duplicate]", c.Rejected["duplicate"], 1) },
		},
		{
			name: "unit held by a user whose 202 never arrived is a note",
			mutate: func(f *fixture) {
				c := f.client("u3")
				c.Accepted, c.Final, c.IssuanceID, c.Door = false, "", "", "transport"
			},
			row:   func(t *testing.T, c CampaignRow) { eq(t, "HeldUnannounced", c.HeldUnannounced, 1) },
			notes: []string{"campaign c1: 1 users hold a unit though no 202 reached them"},
		},
		{
			name: "issued without passing the topic",
			mutate: func(f *fixture) {
				f.topic.Messages = slices.DeleteFunc(f.topic.Messages, func(m topicMsg) bool { return m.User == "u3" })
			},
			want:  []string{"campaign c1: issued without passing the topic: 1 users hold a Store row but never appear on the topic (e.g. u3)"},
			row:   func(t *testing.T, c CampaignRow) { eq(t, "NotDispatched", c.NotDispatched, 1) },
			notes: []string{"campaign c1: 1 accepted users never appeared on the topic (e.g. u3)"},
		},
		{
			name: "redelivery is informational",
			mutate: func(f *fixture) {
				f.topic.Messages = append(f.topic.Messages, topicMsg{Campaign: "c1", User: "u1", Entry: 1001, At: at(5000)})
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Redeliveries", c.Redeliveries, 1)
				eq(t, "DispatchedUsers", c.DispatchedUsers, 5)
			},
			notes: []string{"campaign c1: 1 redeliveries", "u1#1001 ×2"},
		},
		{
			name: "topic at the throttle bound",
			// 5 messages at 0..200 ms plus 17 more at 300..980 ms: 22 in
			// [0, 1s) = 11×BatchSize, allowed.
			mutate: func(f *fixture) { f.burst("b", 17, at(300), 40*time.Millisecond, false) },
			row:    func(t *testing.T, c CampaignRow) { eq(t, "TopicMax10", c.TopicMax10, 22) },
		},
		{
			name:   "topic over the throttle bound",
			mutate: func(f *fixture) { f.burst("b", 18, at(300), 40*time.Millisecond, false) },
			want:   []string{"campaign c1: dispatch throttle: 23 messages on the topic in the 10×Interval window starting 12:00:00.000 (bound 11×BatchSize = 22)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "TopicMax10", c.TopicMax10, 23)
				eq(t, "TopicMax10At", c.TopicMax10At, t0)
			},
		},
		{
			name: "store over the bound with no fault",
			// Messages spread (one per 100 ms from 10 s on), rows issued in
			// a burst of 25 in 250 ms at 20 s.
			mutate: func(f *fixture) {
				f.burst("s", 25, at(20000), 10*time.Millisecond, true)
				for i := range f.topic.Messages[5:] {
					f.topic.Messages[5+i].At = at(10000 + 500*i)
				}
			},
			want: []string{"campaign c1: issue throttle: 25 Store rows issued in the 10×Interval window starting 12:00:20.000 (bound 11×BatchSize = 22), not within 15s after any fault's end"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "StoreMax10", c.StoreMax10, 25)
				eq(t, "StoreMax1", c.StoreMax1, 10)
				eq(t, "StoreUnexcused", c.StoreUnexcused, 3)
			},
		},
		{
			name: "store over the bound right after a fault is a note",
			mutate: func(f *fixture) {
				f.burst("s", 25, at(20000), 10*time.Millisecond, true)
				for i := range f.topic.Messages[5:] {
					f.topic.Messages[5+i].At = at(10000 + 500*i)
				}
				f.in.Faults = []Fault{{Kind: "kill-issuer", Target: "worker-1", Start: at(8000), End: at(12000)}}
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "StoreExcused", c.StoreExcused, 3)
				eq(t, "StoreUnexcused", c.StoreUnexcused, 0)
			},
			notes: []string{"campaign c1: Store issued up to 25 rows in the 10×Interval window starting 12:00:20.000 (bound 22), 8s after the end of fault #1 (kill-issuer worker-1)"},
		},
		{
			name: "store within pace plus a bounded flight",
			mutate: func(f *fixture) {
				f.in.Campaigns[0].MaxInFlight = 6 // 10-Interval: 22 + 6 = 28 >= 25; 1-Interval: 4 + 6 = 10 >= 10
				f.burst("s", 25, at(20000), 10*time.Millisecond, true)
				for i := range f.topic.Messages[5:] {
					f.topic.Messages[5+i].At = at(10000 + 500*i)
				}
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "StoreBound", c.StoreBound, 28)
				eq(t, "StoreMax1", c.StoreMax1, 10)
				eq(t, "StoreUnexcused", c.StoreUnexcused, 0)
				eq(t, "StoreExcused", c.StoreExcused, 0)
			},
		},
		{
			name: "with a bounded flight, excess right after a fault is a violation",
			mutate: func(f *fixture) {
				f.in.Campaigns[0].MaxInFlight = 2 // 22 + 2 = 24 < 25
				f.burst("s", 25, at(20000), 10*time.Millisecond, true)
				for i := range f.topic.Messages[5:] {
					f.topic.Messages[5+i].At = at(10000 + 500*i)
				}
				f.in.Faults = []Fault{{Kind: "kill-issuer", Target: "worker-1", Start: at(8000), End: at(12000)}}
			},
			want: []string{
				"campaign c1: issue throttle: 10 Store rows issued in the Interval starting 12:00:20.000 (bound 2×BatchSize + MaxInFlight = 6)",
				"campaign c1: issue throttle: 25 Store rows issued in the 10×Interval window starting 12:00:20.000 (bound 11×BatchSize + MaxInFlight = 24)",
			},
		},
		{
			name: "topic: more than two ticks' worth in one Interval",
			mutate: func(f *fixture) {
				f.burst("t", 5, at(30000), time.Millisecond, false) // BatchSize 2: at most 4 in an Interval
			},
			want: []string{"campaign c1: dispatch throttle: 5 messages on the topic in the Interval starting 12:00:30.000 (bound 2×BatchSize = 4)"},
		},
		{
			name: "inversion on one line",
			// u5 (entry 1005) holds a unit, u4 (entry 1004) was told sold
			// out; a user refused at the door was never in line.
			mutate: func(f *fixture) {
				f.issue("u5", false)
				f.in.Clients = append(f.in.Clients, Client{User: "d", Campaign: "c1", Presses: 1, Door: "sold_out", Final: "none"})
			},
			want: []string{"campaign c1: inversions: 1 users were told sold out while a user with a later entry number holds a unit (e.g. entry 1004 (u4) sold out but entry 1005 (u5) issued)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Inversions", c.Inversions, 1)
				eq(t, "InversionExamples", strings.Join(c.InversionExamples, ","), "entry 1004 (u4) sold out but entry 1005 (u5) issued")
				eq(t, "InversionsWithinBound", c.InversionsWithinBound, 0)
			},
		},
		{
			name: "inversions on one line: each sold-out user once, the closest holder as example",
			mutate: func(f *fixture) {
				f.client("u2").Final, f.client("u2").IssuanceID = "rejected:sold_out", ""
				sc := f.c1()
				sc.Rows = slices.DeleteFunc(sc.Rows, func(s storeRow) bool { return s.User == "u2" })
				sc.Counter.Issued--
				f.setC1(sc)
				f.issue("u5", false)
			},
			want: []string{"campaign c1: inversions: 2 users were told sold out while a user with a later entry number holds a unit (e.g. entry 1002 (u2) sold out but entry 1003 (u3) issued, entry 1004 (u4) sold out but entry 1005 (u5) issued)"},
			row:  func(t *testing.T, c CampaignRow) { eq(t, "Inversions", c.Inversions, 2) },
		},
		{
			name: "inversion on one line, the unit's entry from the holder's 202",
			mutate: func(f *fixture) {
				f.issue("u5", true)
			},
			want:  []string{"campaign c1: inversions: 1 users were told sold out while a user with a later entry number holds a unit (e.g. entry 1004 (u4) sold out but entry 1005 (u5) issued)"},
			notes: []string{"campaign c1: 1 Store rows have an idempotency key not of the form c1/<entry>/<user>"},
		},
		{
			name: "on one line only sold_out counts",
			// u2 (entry 1002, below u3's unit) was rejected for another
			// reason and holds nothing: not an inversion.
			mutate: func(f *fixture) {
				f.client("u2").Final, f.client("u2").IssuanceID = "rejected:closed", ""
				sc := f.c1()
				sc.Rows = slices.DeleteFunc(sc.Rows, func(s storeRow) bool { return s.User == "u2" })
				sc.Counter.Issued--
				f.setC1(sc)
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Inversions", c.Inversions, 0)
				eq(t, "Rejected[closed]", c.Rejected["closed"], 1)
			},
		},
		{
			name:   "sub-lines: a later winner within the bound is not an inversion",
			mutate: func(f *fixture) { f.shard(-1000 + 10) }, // u3 admitted 10 ms after u4's and u5's 202
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Shards", c.Shards, 2)
				eq(t, "OrderBound", c.OrderBound, 15*time.Millisecond)
				eq(t, "Inversions", c.Inversions, 0)
				eq(t, "InversionsWithinBound", c.InversionsWithinBound, 2)
			},
		},
		{
			name:   "sub-lines: a later winner beyond the bound is an inversion",
			mutate: func(f *fixture) { f.shard(-1000 + 200) },
			want:   []string{"campaign c1: inversions: 2 users were told sold out while a user admitted more than 15ms after their 202 holds a unit (e.g. u4 (entry 1004; 202 at 11:59:59.000) sold out but u3 (entry 1003; admitted at 11:59:59.200, 200ms later) issued, u5 (entry 1005; 202 at 11:59:59.000) sold out but u3 (entry 1003; admitted at 11:59:59.200, 200ms later) issued)"},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Inversions", c.Inversions, 2)
				eq(t, "InversionsWithinBound", c.InversionsWithinBound, 0)
			},
		},
		{
			name: "sub-lines: entry numbers do not order them",
			// u5 (entry 1005) holds a unit and u4 (entry 1004) was told sold
			// out, but every holder was admitted before u4's 202.
			mutate: func(f *fixture) {
				f.shard(-2000)
				f.issue("u5", false)
				for i := range f.topic.Messages {
					if f.topic.Messages[i].User == "u5" {
						f.topic.Messages[i].AdmittedAt = at(-3000)
					}
				}
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "Inversions", c.Inversions, 0)
				eq(t, "InversionsWithinBound", c.InversionsWithinBound, 0)
			},
		},
		{
			name: "sub-lines: a wider OrderBound leaves a later winner within it",
			mutate: func(f *fixture) {
				f.shard(-1000 + 200)
				f.in.OrderBound = 300 * time.Millisecond
			},
			row: func(t *testing.T, c CampaignRow) {
				eq(t, "OrderBound", c.OrderBound, 300*time.Millisecond)
				eq(t, "InversionsWithinBound", c.InversionsWithinBound, 2)
			},
		},
		{
			name: "sub-lines: an explicit OrderBound",
			mutate: func(f *fixture) {
				f.shard(-1000 + 200)
				f.in.OrderBound = 150 * time.Millisecond
			},
			want: []string{"campaign c1: inversions: 2 users were told sold out while a user admitted more than 150ms after their 202 holds a unit"},
		},
		{
			name: "sub-lines: a unit with no admission time is left out, with a note",
			mutate: func(f *fixture) {
				f.shard(-1000 + 200)
				for i := range f.topic.Messages {
					if f.topic.Messages[i].User == "u3" {
						f.topic.Messages[i].AdmittedAt = time.Time{}
					}
				}
			},
			row:   func(t *testing.T, c CampaignRow) { eq(t, "Inversions", c.Inversions, 0) },
			notes: []string{"campaign c1: 1 units held went to entries with no admission time on the topic"},
		},
		{
			name: "store over the bound long after every fault",
			mutate: func(f *fixture) {
				f.burst("s", 25, at(20000), 10*time.Millisecond, true)
				for i := range f.topic.Messages[5:] {
					f.topic.Messages[5+i].At = at(10000 + 500*i)
				}
				f.in.Faults = []Fault{{Kind: "kill-issuer", Target: "worker-1", Start: at(1000), End: at(4000)}}
			},
			want: []string{"campaign c1: issue throttle: 25 Store rows issued"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := cleanFixture()
			if tt.mutate != nil {
				tt.mutate(f)
			}
			r := evaluate(f.in, f.store, f.topic)
			if len(r.Violations) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(r.Violations), len(tt.want), strings.Join(r.Violations, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(r.Violations[i], w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, r.Violations[i], w)
				}
			}
			if r.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v with %d violations", r.OK(), len(r.Violations))
			}
			for _, n := range tt.notes {
				if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("no note contains %q; notes:\n%s", n, strings.Join(r.Notes, "\n"))
				}
			}
			if tt.row != nil {
				if len(r.Campaigns) != 1 {
					t.Fatalf("%d campaign rows", len(r.Campaigns))
				}
				tt.row(t, r.Campaigns[0])
			}
			var b bytes.Buffer
			if err := r.WriteMarkdown(&b); err != nil {
				t.Fatal(err)
			}
			md := b.String()
			if got, want := strings.Count(md, "- ❌ "), len(tt.want); got != want {
				t.Errorf("markdown lists %d violations, want %d:\n%s", got, want, md)
			}
			if got, want := strings.Count(md, bad+" |"), len(tt.want); (got > 0) != (want > 0) {
				t.Errorf("markdown table has %d ❌ cells with %d violations:\n%s", got, want, md)
			}
		})
	}
}

func TestEvaluateClientsOfOtherCampaignsAndCrossCampaignIDs(t *testing.T) {
	f := cleanFixture()
	f.in.Campaigns = append(f.in.Campaigns, Campaign{ID: "c2", Stock: 1, BatchSize: 1, Interval: time.Second})
	f.store.Campaigns["c2"] = storeCampaign{
		Rows:    []storeRow{{User: "v1", N: 1, ID: "idu2", IssuedAt: at(0)}}, // u2's ID in c1
		Counter: &counterRow{Issued: 1, Stock: 1},
	}
	f.in.Clients = append(f.in.Clients,
		Client{User: "v1", Campaign: "c2", Accepted: true, Final: "issued", IssuanceID: "idu2"},
		Client{User: "w", Campaign: "zz", Accepted: true, Final: "waiting"})
	f.topic.Messages = append(f.topic.Messages,
		topicMsg{Campaign: "c2", User: "v1", Entry: 1, At: at(0)},
		topicMsg{Campaign: "zz", User: "w", Entry: 1, At: at(0)})
	r := evaluate(f.in, f.store, f.topic)
	want := []string{`campaign c2: 1 Store rows repeat an issuance ID another row already has (e.g. "idu2" (c1/u2 and c2/v1))`}
	if !slices.Equal(r.Violations, want) {
		t.Errorf("violations = %q, want %q", r.Violations, want)
	}
	eq(t, "Topic.OtherCampaigns", r.Topic.OtherCampaigns, 1)
	for _, n := range []string{"topic: 1 messages belong to campaigns the run did not configure", "clients: 1 client records name campaigns the run did not configure"} {
		if !slices.Contains(r.Notes, n+"; they are not checked") && !slices.Contains(r.Notes, n) {
			t.Errorf("missing note %q in %q", n, r.Notes)
		}
	}
}

func TestWindowMax(t *testing.T) {
	ms := func(v ...int) []time.Time {
		out := make([]time.Time, len(v))
		for i, x := range v {
			out[i] = at(x)
		}
		return out
	}
	tests := []struct {
		name   string
		ts     []time.Time
		w      time.Duration
		want   int
		wantAt time.Time
	}{
		{"empty", nil, time.Second, 0, time.Time{}},
		{"one", ms(5), time.Millisecond, 1, at(5)},
		// [100, 200) holds 100, 150, 199 (not 200: half-open); [150, 250)
		// also holds three; the earliest start wins.
		{"half-open", ms(0, 50, 100, 150, 199, 200, 400), 100 * time.Millisecond, 3, at(100)},
		{"unsorted input", ms(400, 199, 0, 150, 100, 50, 200), 100 * time.Millisecond, 3, at(100)},
		{"equal times", ms(10, 10, 10, 11), time.Millisecond, 3, at(10)},
		{"everything in one window", ms(0, 1, 2, 3), time.Second, 4, at(0)},
		// Ticks of 2 every 100 ms: each window holds one tick.
		{"on-time ticks", ms(0, 0, 100, 100, 200, 200), 100 * time.Millisecond, 2, at(0)},
		// The 100 ms tick runs 1 ms late: [101, 201) holds it and the next.
		{"delayed tick", ms(0, 0, 101, 101, 200, 200), 100 * time.Millisecond, 4, at(101)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a := windowMax(sortTimes(tt.ts), tt.w)
			if n != tt.want || !a.Equal(tt.wantAt) {
				t.Errorf("windowMax = %d at %v, want %d at %v", n, a, tt.want, tt.wantAt)
			}
		})
	}
}

// sample is a sample dispatched at ms, decided lag ms later (lag < 0:
// never decided).
func sample(ms, lag int) Sample {
	s := Sample{User: fmt.Sprint("u", ms), Campaign: "c1", DispatchedAt: at(ms)}
	if lag >= 0 {
		s.DecidedAt = at(ms + lag)
	}
	return s
}

func TestRecovery(t *testing.T) {
	base := []Sample{
		sample(9000, 1000),   // before the fault: ignored
		sample(10500, -1),    // undecided
		sample(11000, 3000),  // too slow
		sample(12000, 1000),  // good, but 15 s in [12, 22] is slow
		sample(15000, 5000),  // too slow
		sample(16000, 500),   // good: [16, 26] holds 16, 20, 26, all good
		sample(20000, 1000),  // good
		sample(26000, 2000),  // exactly the bound: good
		sample(27000, -1),    // undecided, outside [16, 26]
		sample(90000, 40000), // far later
	}
	tests := []struct {
		name      string
		samples   []Sample
		start     int
		wantAfter int
		wantOK    bool
		wantAt    int
	}{
		{"recovers at 16s", base, 10000, 9, true, 16000},
		{"fault before everything", base, 0, 10, true, 16000},
		{"one slow sample at the hold's edge", func() []Sample {
			s := slices.Clone(base)
			s[7] = sample(26000, 2001)
			return s
		}(), 10000, 9, false, 0},
		{"only a late good sample", []Sample{sample(10000, 5000), sample(30000, 100)}, 10000, 2, true, 30000},
		{"no samples after", base, 100000, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecoverer(sortSamples(tt.samples), 2*time.Second)
			n, a, _, ok := r.after(at(tt.start), time.Time{})
			if n != tt.wantAfter || ok != tt.wantOK || (ok && !a.Equal(at(tt.wantAt))) {
				t.Errorf("after = %d, %v, %v; want %d, %v, %v", n, a, ok, tt.wantAfter, at(tt.wantAt), tt.wantOK)
			}
		})
	}
}

func TestRecoveryWindowEndsAtTheNextFault(t *testing.T) {
	s := sortSamples([]Sample{
		sample(10000, 3000), // the fault's own slow sample
		sample(13000, 500),  // good
		sample(16000, 500),  // good
		sample(20500, 4000), // dispatched 1.5 s before the next fault, which delays it
		sample(22000, 4000), // the next fault's
	})
	r := newRecoverer(s, 2*time.Second)
	_, a, hold, ok := r.after(at(10000), at(22000))
	require.True(t, ok)
	assert.Equal(t, at(13000), a)
	assert.Equal(t, 7*time.Second, hold, "the window ends the bound before the next fault starts")
	_, _, _, ok = r.after(at(10000), time.Time{})
	assert.False(t, ok, "without a next fault, [13s, 23s] holds the slow samples")
}

func TestTimeline(t *testing.T) {
	topic := []time.Time{at(9000), at(9500), at(13000), at(13200)}
	row := FaultRow{Fault: Fault{Start: at(10000), End: at(12000)}, Recovered: true, RecoveredAt: at(13000)}
	timeline(&row, []Event{
		{At: at(9000), Proc: "worker-1", What: EventAssigned}, // before the fault
		{At: at(12300), Proc: "worker-2", What: EventAssigned},
		{At: at(12600), Proc: "worker-1", What: EventAssigned}, // the last one counts
		{At: at(12900), Proc: "worker-2", What: EventLeads},
		{At: at(25000), Proc: "worker-1", What: EventLeads}, // the next fault's
	}, topic, at(20000))
	assert.Equal(t, at(12600), row.Assigned)
	assert.Equal(t, "worker-1", row.AssignedProc)
	assert.Equal(t, at(12900), row.Leads)
	assert.Equal(t, at(13000), row.Resumed, "dispatch resumed after the gap that began in the fault")
}

func TestMaxLag(t *testing.T) {
	s := sortSamples([]Sample{sample(0, 100), sample(1000, 700), sample(2000, -1), sample(3000, 300), sample(9000, 5000)})
	n, m, u := maxLag(s, at(500), at(3000))
	if n != 3 || m != 700*time.Millisecond || u != 1 {
		t.Errorf("maxLag = %d, %v, %d; want 3, 700ms, 1", n, m, u)
	}
	n, m, u = maxLag(s, at(0), at(1000))
	if n != 2 || m != 700*time.Millisecond || u != 0 {
		t.Errorf("maxLag = %d, %v, %d; want 2, 700ms, 0", n, m, u)
	}
}

func TestDispatchGap(t *testing.T) {
	sec := func(v ...int) []time.Time {
		out := make([]time.Time, len(v))
		for i, x := range v {
			out[i] = at(1000 * x)
		}
		return out
	}
	tests := []struct {
		name      string
		ts        []time.Time
		from, to  int // seconds
		wantGap   time.Duration
		wantAt    int // seconds
		wantN     int
		wantEnded bool
	}{
		// Pairs meeting [3, 34]: (2,7) clipped to [3,7] = 4s, (7,8) 1s,
		// (8,30) 22s. The silence after 30 is not a gap.
		{"clipped and ended", sec(0, 1, 2, 7, 8, 30), 3, 34, 22 * time.Second, 8, 3, true},
		// (2, 50) clipped to [3, 34] = 31s; nothing inside.
		{"one gap over the window", sec(0, 1, 2, 50), 3, 34, 31 * time.Second, 3, 0, false},
		{"steady", sec(0, 1, 2, 3, 4, 5, 6), 1, 4, time.Second, 1, 4, false},
		{"empty topic", nil, 1, 4, 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, a, n, ended := dispatchGap(tt.ts, at(1000*tt.from), at(1000*tt.to))
			wantAt := at(1000 * tt.wantAt)
			if tt.wantGap == 0 {
				wantAt = time.Time{}
			}
			if g != tt.wantGap || !a.Equal(wantAt) || n != tt.wantN || ended != tt.wantEnded {
				t.Errorf("dispatchGap = %v at %v, %d, %v; want %v at %v, %d, %v", g, a, n, ended, tt.wantGap, wantAt, tt.wantN, tt.wantEnded)
			}
		})
	}
}

func press(ms, api int, outcome string) Press { return Press{At: at(ms), API: api, Outcome: outcome} }

func TestAdmissionGap(t *testing.T) {
	ps := []Press{
		press(0, 1, "accepted"),
		press(1000, 1, "accepted"),
		press(2000, 1, "transport"),
		press(3000, 2, "http_503"),
		press(4000, 2, "repeat"),
		press(5000, 1, "transport"),
		press(9000, 2, "sold_out"),
		press(20000, 1, "transport"),
		press(21000, 2, "accepted"),
	}
	// Window [2, 13]: runs {2,3} from 1 to 4 = 3s and {5} from 4 to 9 = 5s;
	// {20} lies outside.
	n, failed, gap, a, open := admissionGap(ps, at(2000), at(13000))
	if n != 5 || failed != 3 || gap != 5*time.Second || !a.Equal(at(4000)) || open {
		t.Errorf("admissionGap = %d, %d, %v at %v, %v; want 5, 3, 5s at %v, false", n, failed, gap, a, open, at(4000))
	}
	// No failure in [9, 10].
	n, failed, gap, _, _ = admissionGap(ps, at(9000), at(10000))
	if n != 1 || failed != 0 || gap != 0 {
		t.Errorf("admissionGap = %d, %d, %v; want 1, 0, 0", n, failed, gap)
	}
	// Failures with no answer after them: measured to the last failure.
	tail := []Press{press(0, 1, "accepted"), press(1000, 1, "transport"), press(3500, 2, "http_500")}
	_, failed, gap, a, open = admissionGap(tail, at(500), at(5000))
	if failed != 2 || gap != 3500*time.Millisecond || !a.Equal(at(0)) || !open {
		t.Errorf("admissionGap = %d failed, %v at %v, open %v; want 2, 3.5s at %v, open", failed, gap, a, open, at(0))
	}
}

func TestFaultRows(t *testing.T) {
	in := Inputs{
		Samples: []Sample{sample(0, 100), sample(1000, -1), sample(4000, 3000), sample(6000, 200), sample(8000, 300)},
		Presses: []Press{
			press(500, 1, "accepted"), press(1200, 2, "transport"), press(1500, 2, "transport"),
			press(2500, 1, "accepted"), press(3500, 2, "transport"), press(5200, 2, "sold_out"),
		},
		Faults: []Fault{
			{Kind: "kill-api", Target: "api-2", Start: at(1000), End: at(3000)},
			{Kind: "kill-broker", Target: "broker-1", Start: at(50000), End: at(52000)},
			{Kind: "kill-api", Target: "api-3", Start: at(1000), End: at(3000)},
		},
	}
	topic := []time.Time{at(0), at(500), at(1000), at(3000), at(3500), at(8000)}
	rows := faultRows(in, topic, 2*time.Second)
	f := rows[0]
	eq(t, "SamplesAfter", f.SamplesAfter, 4)
	eq(t, "Recovered", f.Recovered, true)
	eq(t, "RecoveredAt", f.RecoveredAt, at(6000)) // 1 s undecided, 4 s too slow
	eq(t, "Recovery", f.Recovery, 5*time.Second)
	// Lag window [-4 s, 33 s]: all five, one undecided, max decided 3 s.
	eq(t, "LagSamples", f.LagSamples, 5)
	eq(t, "Undecided", f.Undecided, 1)
	eq(t, "MaxLag", f.MaxLag, 3*time.Second)
	// Gap window [1 s, 33 s]: 1→3 = 2 s, 3→3.5, 3.5→8 = 4.5 s.
	eq(t, "DispatchGap", f.DispatchGap, 4500*time.Millisecond)
	eq(t, "DispatchGapAt", f.DispatchGapAt, at(3500))
	eq(t, "TopicEnded", f.TopicEnded, true)
	// Admission window [1 s, 13 s]: {1.2, 1.5} from 0.5 to 2.5 = 2 s;
	// {3.5} from 2.5 to 5.2 = 2.7 s.
	eq(t, "Presses", f.Presses, 5)
	eq(t, "FailedPresses", f.FailedPresses, 3)
	eq(t, "AdmissionGap", f.AdmissionGap, 2700*time.Millisecond)
	eq(t, "API", f.API, 2)
	eq(t, "APIBack", f.APIBack, true)
	eq(t, "APIBackAfter", f.APIBackAfter, 2200*time.Millisecond) // sold_out at 5.2 s is an answer

	g := rows[1]
	eq(t, "NoTraffic", g.NoTraffic, true)
	eq(t, "Recovered", g.Recovered, false)
	eq(t, "LagSamples", g.LagSamples, 0)
	eq(t, "Presses", g.Presses, 0)
	eq(t, "API", g.API, 0)

	h := rows[2]
	eq(t, "API", h.API, 3)
	eq(t, "APIBack", h.APIBack, false)

	r := &Report{Faults: rows, RecoveredLag: 2 * time.Second}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 1 | kill-api api-2 | 12:00:01.000 | 2s | 5s (at 12:00:06.000) | ∞: 1 of 5 samples undecided; decided ones ≤ 3s | 4.5s from 12:00:03.500 (4 messages); the topic's last message was at 12:00:08.000 | 2.7s from 12:00:02.500 (3 of 5 presses failed) | api-2: 2.2s after the end |",
		"no traffic after the fault (last sample dispatched 12:00:08.000)",
		"api-3 answered no press after the end",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

func TestEvaluateNotRecoveredNote(t *testing.T) {
	f := cleanFixture()
	f.in.Samples = []Sample{sample(1000, -1), sample(2000, 100)}
	f.in.Faults = []Fault{{Kind: "cut-kafka", Target: "workers->kafka", Start: at(500), End: at(900)}}
	r := evaluate(f.in, f.store, f.topic)
	// The 1 s sample is undecided; the 2 s one is good with nothing after
	// it: recovered at 2 s.
	eq(t, "Recovered", r.Faults[0].Recovered, true)
	eq(t, "Recovery", r.Faults[0].Recovery, 1500*time.Millisecond)
	f.in.Samples = []Sample{sample(1000, -1), sample(2000, 2500)}
	r = evaluate(f.in, f.store, f.topic)
	eq(t, "Recovered", r.Faults[0].Recovered, false)
	if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.HasPrefix(s, "fault #1 (cut-kafka workers->kafka): not recovered") }) {
		t.Errorf("no not-recovered note in %q", r.Notes)
	}
	if !r.OK() {
		t.Errorf("slow recovery is not a violation: %q", r.Violations)
	}
}

func TestWriteMarkdownSections(t *testing.T) {
	f := cleanFixture()
	f.client("u4").Final = "not_found"
	r := evaluate(f.in, f.store, f.topic)
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	var heads []string
	for l := range strings.Lines(md) {
		if strings.HasPrefix(l, "#") {
			if !strings.HasPrefix(l, "### ") {
				t.Errorf("heading not at level 3: %q", l)
			}
			heads = append(heads, strings.TrimSpace(l))
		}
	}
	want := []string{"### Invariants per campaign", "### Violations", "### Notes", "### Recovery per fault", "### Waits as promised", "### How each figure is computed"}
	if !slices.Equal(heads, want) {
		t.Errorf("headings = %q, want %q", heads, want)
	}
	for _, s := range []string{
		"| Figure | Must be | c1 |",
		"| Lost: ended on not_found | 0 | 1 ❌ |",
		"| Topic: most messages in 10 Intervals | ≤ 11×BatchSize | 5 (≤ 22) at 12:00:00.000 |",
		"- ❌ campaign c1: lost: 1 accepted users ended on not_found",
		"No faults were injected.",
		"**Recovery**: the earliest dispatch time D",
		"| Inversions: told sold out, a user admitted after them holds a unit | 0 | 0 (one line: by entry number) |",
		"| Told sold out, a unit holder admitted ≤ the bound after their 202 | info (sub-lines) | - |",
		"The bound is 15ms (10 ms resolution + 5 ms for clocks",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

func TestDecodeEntry(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{`{"v":1,"campaign":"c","user":"u","entry":3,"admitted_at_us":1,"request_id":"r","trace":"t"}`, ""},
		{`{"v":2,"campaign":"c","user":"u","entry":3}`, "not version 1"},
		{`{"campaign":"c","user":"u","entry":3}`, "not version 1"},
		{`{"v":1,"user":"u","entry":3}`, "no campaign or user"},
		{`{"v":1,"campaign":"c","user":"u","entry":0}`, "entry not positive"},
		{`nope`, "not JSON"},
	}
	for _, tt := range tests {
		e, err := decodeEntry([]byte(tt.in))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("decodeEntry(%s) = %v", tt.in, err)
		case tt.wantErr == "" && (e.Campaign != "c" || e.User != "u" || e.Entry != 3 || e.AdmittedAtUS != 1):
			t.Errorf("decodeEntry(%s) = %+v", tt.in, e)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("decodeEntry(%s) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// waitRows: actual ÷ estimated wait per group; users without an estimate,
// undecided, or sampled on another entry are left out; a wait that
// overlaps a fault (or the 30 s after it) counts for it and not for normal
// running.
func TestWaitRows(t *testing.T) {
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var in Inputs
	add := func(user string, acceptedAt, decidedAt float64, estimateMS int64) {
		in.Clients = append(in.Clients, Client{User: user, Campaign: "c", Accepted: true, AcceptedAt: sec(acceptedAt), Entry: 1, EstimatedWaitMS: estimateMS})
		s := Sample{User: user, Campaign: "c", Entry: 1}
		if decidedAt > 0 {
			s.DecidedAt = sec(decidedAt)
		}
		in.Samples = append(in.Samples, s)
	}
	for i := range 10 {
		add(fmt.Sprintf("n%d", i), 0, 10+float64(i), 10_000) // ratios 1.0 .. 1.9, no fault
	}
	add("slow", 100, 140, 10_000) // 4.0, during the fault
	add("none", 0, 5, 0)          // no estimate
	add("open", 0, 0, 10_000)     // undecided
	in.Faults = []Fault{{Kind: "kill-leader", Target: "worker-1", Start: sec(120), End: sec(122)}}
	rows := waitRows(in)
	if len(rows) != 2 {
		t.Fatalf("rows: %+v", rows)
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if r := rows[0]; r.Group != "normal running" || r.N != 10 || !near(r.P50, 1.5) || !near(r.P95, 1.9) || r.Estimated != 10*time.Second {
		t.Errorf("normal running: %+v", r)
	}
	if r := rows[1]; r.Group != "#1 kill-leader worker-1" || r.N != 1 || !near(r.P99, 4.0) {
		t.Errorf("the fault: %+v", r)
	}
	var b strings.Builder
	r := &Report{Waits: rows}
	mw := &mdWriter{w: &b}
	r.writeWaits(mw)
	if mw.err != nil {
		t.Fatal(mw.err)
	}
	if want := "| normal running | 10 | 1.50 | 1.90 | 1.90 | 10.0 s | 15.0 s |"; !strings.Contains(b.String(), want) {
		t.Errorf("the table lacks %q:\n%s", want, b.String())
	}
}

// A window the next fault cuts to under minHold does not count: a few good
// samples just before the next fault are not a recovery.
func TestRecoveryWindowCutShortDoesNotCount(t *testing.T) {
	s := sortSamples([]Sample{
		sample(10000, 3000), // the fault's own slow samples
		sample(15000, 3000),
		sample(18500, 500), // good, but 1.5 s before the next fault less the bound
		sample(19500, 500),
		sample(22000, 4000), // the next fault's
	})
	r := newRecoverer(s, 2*time.Second)
	_, _, _, ok := r.after(at(10000), at(22000))
	assert.False(t, ok, "[18.5s, 20s] is shorter than minHold")
}
