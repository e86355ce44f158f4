package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What OrderBound defaults to: a sharded campaign's merge orders entries by
// their admission times, which the line keeps to its clock checkpoints (one
// per 10 ms; the entries between two are spread evenly), and clocks may
// differ a little.
const (
	admissionResolution = 10 * time.Millisecond
	clockAllowance      = 5 * time.Millisecond
)

// unit is one Store row placed in the line: the entry it went to and, when
// the topic carried it, that entry's admission time.
type unit struct {
	user     string
	entry    int64
	admitted time.Time
}

// entryOfKey returns the entry number in an idempotency key of the
// campaign and user, "campaign/entry/user" (couponq's Entry.Key), and
// whether the key has that form.
func entryOfKey(key, campaign, user string) (int64, bool) {
	mid, ok := strings.CutPrefix(key, campaign+"/")
	if !ok {
		return 0, false
	}
	if mid, ok = strings.CutSuffix(mid, "/"+user); !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(mid, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != mid {
		return 0, false
	}
	return n, true
}

// inversions counts the campaign's sold-out users (accepted, told
// rejected:sold_out, holding nothing) admitted before some user who holds
// a unit: on one line by entry number, over sub-lines by admission time,
// where a holder must have been admitted more than row.OrderBound after
// the sold-out user's 202 (users closer than that are counted in
// InversionsWithinBound, for information). Each sold-out user counts once.
func inversions(row *CampaignRow, clients []Client, holdings map[string][]storeRow, msgs []topicMsg, violate, note func(string, ...any)) {
	// What the crowd and the topic say of each user's entry.
	told := map[string]int64{} // user -> the entry its 202 carried
	for _, cl := range clients {
		if cl.Accepted && cl.Entry > 0 {
			told[cl.User] = cl.Entry
		}
	}
	admitted := map[userEntry]time.Time{} // the earliest admission time any of its messages carries
	onTopic := map[userEntry]bool{}
	topicEntries := map[string][]int64{} // user -> its distinct entries on the topic
	for _, m := range msgs {
		k := userEntry{m.User, m.Entry}
		if !onTopic[k] {
			onTopic[k] = true
			topicEntries[m.User] = append(topicEntries[m.User], m.Entry)
		}
		if t, ok := admitted[k]; !m.AdmittedAt.IsZero() && (!ok || m.AdmittedAt.Before(t)) {
			admitted[k] = m.AdmittedAt
		}
	}

	// Every unit held, placed in the line.
	var units []unit
	var keyless, untimed int
	var unplaced examples
	for _, u := range slices.Sorted(maps.Keys(holdings)) {
		for _, s := range holdings[u] {
			e, ok := entryOfKey(s.Key, row.ID, u)
			if !ok {
				keyless++
				switch {
				case told[u] > 0:
					e = told[u]
				case len(topicEntries[u]) == 1:
					e = topicEntries[u][0]
				default:
					unplaced.add(u)
					continue
				}
			}
			un := unit{user: u, entry: e, admitted: admitted[userEntry{u, e}]}
			if row.Shards > 1 && un.admitted.IsZero() {
				untimed++
				continue
			}
			units = append(units, un)
		}
	}
	if keyless > 0 {
		note("campaign %s: %d Store rows have an idempotency key not of the form %s/<entry>/<user>; the inversion check took their entry from the holder's 202, or from the topic", row.ID, keyless, row.ID)
	}
	if n := len(unplaced.list) + unplaced.more; n > 0 {
		note("campaign %s: %d units held could not be placed in the line (no entry number in the key, the holder's 202 or the topic) and are left out of the inversion check (%s)", row.ID, n, unplaced)
	}
	if untimed > 0 {
		note("campaign %s: %d units held went to entries with no admission time on the topic and are left out of the inversion check", row.ID, untimed)
	}

	// The sold-out users, in line order.
	var soldOut []Client
	unknown := 0
	for _, cl := range clients {
		if !cl.Accepted || cl.Final != "rejected:sold_out" || len(holdings[cl.User]) > 0 {
			continue // refused at the door, not sold out, or holding a unit after all (a violation of its own)
		}
		if (row.Shards > 1 && cl.AcceptedAt.IsZero()) || (row.Shards <= 1 && cl.Entry <= 0) {
			unknown++
			continue
		}
		soldOut = append(soldOut, cl)
	}
	if unknown > 0 {
		what := "entry number"
		if row.Shards > 1 {
			what = "time of the 202"
		}
		note("campaign %s: %d users told sold out have no %s on record and are left out of the inversion check", row.ID, unknown, what)
	}
	if len(units) == 0 || len(soldOut) == 0 {
		return
	}

	var ex examples
	if row.Shards <= 1 {
		slices.SortFunc(units, func(a, b unit) int { return cmp.Compare(a.entry, b.entry) })
		slices.SortStableFunc(soldOut, func(a, b Client) int { return cmp.Compare(a.Entry, b.Entry) })
		last := units[len(units)-1].entry
		for _, a := range soldOut {
			if a.Entry >= last {
				break
			}
			row.Inversions++
			// The first unit after a's entry: the closest example.
			i, _ := slices.BinarySearchFunc(units, a.Entry+1, func(u unit, e int64) int { return cmp.Compare(u.entry, e) })
			b := units[i]
			ex.add(fmt.Sprintf("entry %d (%s) sold out but entry %d (%s) issued", a.Entry, a.User, b.entry, b.user))
		}
		row.InversionExamples = ex.list
		if row.Inversions > 0 {
			violate("campaign %s: inversions: %d users were told sold out while a user with a later entry number holds a unit (%s)", row.ID, row.Inversions, ex)
		}
		return
	}

	slices.SortFunc(units, func(a, b unit) int { return a.admitted.Compare(b.admitted) })
	slices.SortStableFunc(soldOut, func(a, b Client) int { return a.AcceptedAt.Compare(b.AcceptedAt) })
	last := units[len(units)-1].admitted
	for _, a := range soldOut {
		d := last.Sub(a.AcceptedAt)
		switch {
		case d > row.OrderBound:
			row.Inversions++
			// The first holder admitted beyond the bound: the closest example.
			edge := a.AcceptedAt.Add(row.OrderBound)
			i, _ := slices.BinarySearchFunc(units, edge, func(u unit, t time.Time) int {
				if u.admitted.After(t) {
					return 1
				}
				return -1
			})
			b := units[i]
			ex.add(fmt.Sprintf("%s (entry %d; 202 at %s) sold out but %s (entry %d; admitted at %s, %v later) issued",
				a.User, a.Entry, clock(a.AcceptedAt), b.user, b.entry, clock(b.admitted), dur(b.admitted.Sub(a.AcceptedAt))))
		case d > 0:
			row.InversionsWithinBound++
		}
	}
	row.InversionExamples = ex.list
	if row.Inversions > 0 {
		violate("campaign %s: inversions: %d users were told sold out while a user admitted more than %v after their 202 holds a unit (%s)", row.ID, row.Inversions, row.OrderBound, ex)
	}
}
