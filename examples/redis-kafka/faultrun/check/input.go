package check

import "time"

// Campaign is one campaign as the fault run configured it.
type Campaign struct {
	ID           string
	Stock        int64
	BatchSize    int           // entries the scheduler may move per Interval
	Interval     time.Duration // the scheduler's tick for this campaign
	PerUserLimit int           // units one user may hold (1 unless set)
	// MaxInFlight is the scheduler's bound on the campaign's entries in
	// flight (MaxInFlightBatches × BatchSize); 0 means none. With a bound,
	// the Store may see at most MaxInFlight entries on top of the pace in
	// any window, faults or not; without one, a backlog that queued in the
	// transport while consumers were away arrives at consumer speed.
	MaxInFlight int
	// Shards is the campaign's sub-line count (couponq's Campaign.Shards).
	// The checks are the same however the line is kept, except what
	// "admitted after" means for inversions: the entry number on one line
	// (Shards <= 1), the admission time over sub-lines (see OrderBound).
	Shards int
}

// Client is one user of the crowd, as the crowd saw it: what the api
// answered to its presses and what its status polls said last. The fault
// run writes one per user (clients.jsonl).
type Client struct {
	User     string `json:"user"`
	Campaign string `json:"campaign"`
	// Presses is how many times the user pressed (1 or 2).
	Presses int `json:"presses"`
	// Accepted: some press was answered 202 (a new entry or the user's
	// existing one). Only accepted users were promised an outcome.
	Accepted   bool      `json:"accepted"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"` // the first 202
	Entry      int64     `json:"entry,omitempty"`      // the entry number that 202 carried
	// EstimatedWaitMS is the wait that 202 promised (its estimated_wait_ms;
	// 0 when it gave none: beyond the stock, paused, a repeat).
	EstimatedWaitMS int64 `json:"estimated_wait_ms,omitempty"`
	API             int   `json:"api,omitempty"` // which api (1, 2, ...) answered it
	// Door is the answer to the last press when none was a 202: "sold_out",
	// "closed", "transport" (no answer at all), "http_503", ...
	Door string `json:"door,omitempty"`
	// Final is the last status the user's polls saw: "issued",
	// "rejected:<reason>" (terminal), or "waiting", "in_flight",
	// "not_found" (the line no longer knows the entry the 202 promised),
	// "unknown" (no answer) when the run ended without a terminal status.
	Final      string    `json:"final"`
	IssuanceID string    `json:"issuance_id,omitempty"`
	FinalAt    time.Time `json:"final_at,omitzero"` // when Final was first seen
	// NotFoundSeen: some poll after the 202 answered 404 not_found, even if
	// a later one found the entry again.
	NotFoundSeen bool `json:"not_found_seen,omitempty"`
}

// Terminal reports whether Final is an outcome (issued or rejected).
func (c Client) Terminal() bool {
	return c.Final == "issued" || len(c.Final) > len("rejected:") && c.Final[:len("rejected:")] == "rejected:"
}

// Press is one POST of the crowd, for admission availability: when it was
// answered, by which api, and how ("accepted", "repeat", "sold_out",
// "transport" for no answer, "http_503", ...). The fault run writes them to
// presses.jsonl.
type Press struct {
	At      time.Time `json:"at"`
	API     int       `json:"api"`
	Outcome string    `json:"outcome"`
}

// Sample is one entry the run's watcher saw on the topic (it consumes the
// topic with its own consumer group, raw) and then polled until it was
// decided: a sample of every entry dispatched (about 1 in 10 users), for
// recovery times. samples.jsonl.
type Sample struct {
	User         string    `json:"user"`
	Campaign     string    `json:"campaign"`
	Entry        int64     `json:"entry"`
	DispatchedAt time.Time `json:"dispatched_at"` // the Kafka record's timestamp
	// DecidedAt is when a status poll first saw a terminal state; zero if
	// none did before the run ended.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Outcome   string    `json:"outcome,omitempty"` // "issued", "rejected:<reason>"
}

// Fault is one fault the run injected.
type Fault struct {
	Kind   string    `json:"kind"`   // "kill-api", "kill-leader", "kill-issuer", "kill-broker", "kill-redis", "stop-redis", "cut-redis", "cut-kafka", "latency-redis", "latency-kafka", "rolling-deploy"
	Target string    `json:"target"` // "api-1", "worker-2", "broker-3", "redis", "workers->redis", ...
	Start  time.Time `json:"start"`  // when it hit
	End    time.Time `json:"end"`    // when it was undone: the process restarted, resumed, the proxy healed
	Note   string    `json:"note,omitempty"`
}

// Inputs is everything the checker reads. The files come from the crowd
// and the watcher (outside the code under test); the Store and the topic
// are read directly, with SQL and a plain Kafka consumer.
type Inputs struct {
	Campaigns []Campaign
	Clients   []Client
	Presses   []Press
	Samples   []Sample
	Faults    []Fault
	// PostgresDSN reaches the Store of record; its search_path selects the
	// run's schema (tables couponq_issuances, couponq_counters).
	PostgresDSN string
	// KafkaBrokers and Topic: the topic every campaign's entries went through.
	KafkaBrokers string
	Topic        string
	// Events are the fleet's own log lines that mark a hand-over (a
	// consumer assigned partitions, a scheduler taking the lead), for each
	// fault's timeline. Optional.
	Events []Event
	// RecoveredLag is the decision lag (DecidedAt - DispatchedAt) under which
	// the pipeline counts as working normally again; 0 means 2s.
	RecoveredLag time.Duration
	// OrderBound is how much later than a sold-out user's 202 a unit
	// holder of a sharded campaign must have been admitted for the pair to
	// count as an inversion. 0 means 10ms (the resolution of admission
	// times) + 5ms (clocks). The merge's watermark plays no part: the
	// sold-out user's entry was in its sub-line before their 202 was sent,
	// so the merge saw it before the holder's became eligible.
	OrderBound time.Duration
}

// Event kinds.
const (
	EventAssigned = "assigned" // a worker's consumer was assigned partitions
	EventLeads    = "leads"    // a worker's scheduler took the leader lease
)

// Event is one line of a worker's log that marks a hand-over, with the
// time the worker logged it.
type Event struct {
	At   time.Time `json:"at"`
	Proc string    `json:"proc"` // "worker-1"
	What string    `json:"what"` // EventAssigned, EventLeads
}
