package check

import "time"

// Report is what Check found: one row per campaign (the invariants and the
// figures beside them), one row per fault (recovery), the violations and the
// informational notes.
type Report struct {
	Campaigns []CampaignRow
	Faults    []FaultRow
	Topic     TopicSummary
	// RecoveredLag is the lag bound the recovery figures used.
	RecoveredLag time.Duration
	// OrderBound is the bound the inversion check of sharded campaigns
	// used (Inputs.OrderBound, default applied).
	OrderBound time.Duration
	// Violations are broken invariants, each a sentence naming the campaign
	// (or fault) and the figures. Empty means the run passed.
	Violations []string
	// Waits compare the sampled users' actual waits with the estimates
	// their 202s gave: normal running, then each fault.
	Waits []WaitRow
	// Notes are findings that are not violations: things a reader should
	// know to interpret the figures (a 202 lost on the way, backlog catch-up
	// after a fault, messages the checker could not read).
	Notes []string
}

// OK reports whether the run broke no invariant.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// TopicSummary is what the topic read returned, over all campaigns.
type TopicSummary struct {
	Partitions int
	Messages   int // decoded messages, all campaigns
	// Undecodable: messages that are not JSON of version 1 with a campaign,
	// a user and a positive entry.
	Undecodable int
	// OtherCampaigns: decoded messages of campaigns the run did not configure.
	OtherCampaigns int
}

// CampaignRow is one campaign's invariants and figures.
type CampaignRow struct {
	ID           string
	Stock        int64
	BatchSize    int
	Interval     time.Duration
	PerUserLimit int // the effective limit: 1 when the configuration said 0

	// Store.
	Rows          int64 // couponq_issuances rows of the campaign
	CounterFound  bool  // a couponq_counters row exists
	CounterIssued int64
	CounterStock  int64
	Holders       int // distinct users holding at least one row
	// OverLimitUsers: users holding more rows than PerUserLimit.
	OverLimitUsers    int
	OverLimitExamples []string
	// DuplicateIDs: rows whose issuance ID another row (of any campaign)
	// already has.
	DuplicateIDs int

	// Clients (the crowd's records).
	Clients    int
	Accepted   int
	ToldIssued int
	// Rejected counts clients whose final status was "rejected:<reason>", by
	// reason.
	Rejected map[string]int
	// Lost: accepted clients whose final status is not terminal, by that
	// status ("not_found", "waiting", "in_flight", "unknown", ...).
	Lost        int
	LostByFinal map[string]int
	// LostHolding: lost clients that nevertheless hold a Store row (the unit
	// was issued, the user never learnt it).
	LostHolding  int
	NotFoundSeen int
	// Clients vs Store.
	IssuedNoRow      int // told "issued", no Store row
	IssuedIDMismatch int // told "issued" with an ID none of the user's rows has
	RejectedHolding  int // told rejected (not duplicate), holds a row
	// HeldUnannounced: users holding a row without an accepted client (the
	// 202 never reached them). Not a violation.
	HeldUnannounced int

	// Topic.
	Messages        int // messages of the campaign
	DispatchedUsers int // distinct users among them
	// Redeliveries: messages beyond the first for the same (user, entry).
	Redeliveries int
	// NotDispatched: accepted clients with no message on the topic.
	NotDispatched int
	// RowsNotOnTopic: users holding a row who never appear on the topic.
	RowsNotOnTopic int

	// Order. Shards is the campaign's sub-line count (1 for one line).
	Shards int
	// Inversions: accepted users told rejected:sold_out, holding nothing,
	// while a user admitted after them holds a unit. On one line "after" is
	// a higher entry number; over sub-lines it is an admission time more
	// than OrderBound after the sold-out user's 202. A violation.
	Inversions        int
	InversionExamples []string
	// InversionsWithinBound (sharded campaigns, info): sold-out users with
	// a unit holder admitted after their 202, but not more than OrderBound
	// after it: too close to tell the order the merge promises.
	InversionsWithinBound int
	OrderBound            time.Duration // 0 for one line

	// Throttle. Bound = 11 × BatchSize: the most a 10-Interval window may hold.
	Bound        int
	TopicMax1    int
	TopicMax1At  time.Time
	TopicMax10   int
	TopicMax10At time.Time
	StoreMax1    int
	StoreMax1At  time.Time
	StoreMax10   int
	StoreMax10At time.Time
	// StoreExcused: Store windows over the bound that overlap a fault's
	// [Start, End+15s] (backlog catch-up, a note); StoreUnexcused: the others
	// (a violation). Counted by window start (one per row that starts one).
	StoreExcused   int
	StoreUnexcused int
	// StoreBound is what a Store 10-Interval window may hold: Bound plus the
	// campaign's MaxInFlight. With MaxInFlight set every excess is a
	// violation (none is excused as catch-up).
	StoreBound  int
	MaxInFlight int
}

// FaultRow is one fault's recovery figures.
type FaultRow struct {
	Index int // 1-based, in Inputs.Faults order
	Fault Fault

	// Recovery. SamplesAfter counts samples dispatched at or after Start;
	// with none, NoTraffic is set and Recovered is false.
	SamplesAfter int
	NoTraffic    bool
	// LastSample is the latest sample's dispatch time overall (for "no
	// traffic" faults: when the traffic stopped).
	LastSample  time.Time
	Recovered   bool
	RecoveredAt time.Time
	Recovery    time.Duration // RecoveredAt - Fault.Start

	// Lag among samples dispatched in [Start-5s, End+30s]. Undecided
	// samples count as infinite lag; MaxLag is over the decided ones.
	LagSamples int
	MaxLag     time.Duration
	Undecided  int

	// Dispatch: the longest gap between consecutive topic messages (all
	// campaigns), clipped to [Start, End+30s]. DispatchMessages counts the
	// messages inside that window; TopicEnded is set when the topic's last
	// message came before the window's end (the silence after it is not a
	// gap between two messages and is not counted).
	DispatchGap      time.Duration
	DispatchGapAt    time.Time
	DispatchMessages int
	TopicEnded       bool
	LastMessage      time.Time

	// Admission within [Start, End+10s]: Presses and FailedPresses count the
	// presses answered in it; AdmissionGap is the longest stretch between
	// two answered presses with at least one failed press in between (0 if
	// none failed). AdmissionOpenEnded: no press was answered after the
	// longest failing stretch; it is measured to its last failed press.
	Presses            int
	FailedPresses      int
	AdmissionGap       time.Duration
	AdmissionGapAt     time.Time
	AdmissionOpenEnded bool

	// For kill-api faults: API is the killed api's number; APIBack is set
	// when it answered a press at or after End, APIBackAfter after how long.
	API          int
	APIBack      bool
	APIBackAfter time.Duration

	// The timeline, for where the recovery time went (zero: not seen
	// before RecoveredAt, or, for the events, before the next fault).
	// Assigned: the last time a worker's consumer was assigned partitions
	// in [Start, RecoveredAt + 5s]. Leads: the first time a scheduler took
	// the lead in [Start, next fault). Resumed: the first topic message
	// after the longest dispatch gap, when that gap began in [Start, End]
	// and lasted at least a second.
	Assigned     time.Time
	AssignedProc string
	Leads        time.Time
	LeadsProc    string
	Resumed      time.Time
	// Hold is how long after RecoveredAt the recovery's window ran: 10 s,
	// or less when the next fault began sooner.
	Hold time.Duration
}
