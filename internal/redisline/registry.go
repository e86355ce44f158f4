package redisline

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

var (
	//go:embed lua/registry_create.lua
	registryCreateLua string
	//go:embed lua/registry_update.lua
	registryUpdateLua string
	//go:embed lua/registry_delete.lua
	registryDeleteLua string

	registryCreateScript = redis.NewScript(registryCreateLua)
	registryUpdateScript = redis.NewScript(registryUpdateLua)
	registryDeleteScript = redis.NewScript(registryDeleteLua)
)

// Error codes the registry scripts answer with.
const (
	errCodeExists   = "COUPONQ_EXISTS"
	errCodeUnknown  = "COUPONQ_UNKNOWN"
	errCodeConflict = "COUPONQ_CONFLICT"
	errCodeShards   = "COUPONQ_SHARDS"
)

// listChunk is how many IDs List reads from the index, and records it
// fetches in one pipeline, at a time.
const listChunk = 500

// RegistryConfig configures a Registry. Zero values take the defaults
// documented on each field.
type RegistryConfig struct {
	// Client is the host's Redis client: a single node, Sentinel or Cluster
	// client. Required. The Registry never closes it.
	Client redis.UniversalClient
	// Prefix starts every key, as Config.Prefix does for the Queue (the two
	// may share a prefix: their keys do not collide). Empty means
	// "couponq". It may not contain braces, which would move the hash tag.
	Prefix string
}

// Registry is a couponq.Registry on Redis, shared by every process that
// uses the same Redis and Prefix.
//
// Layout: each campaign is one hash, "prefix:{id}:campaign", in the
// campaign's own hash slot (next to its Queue keys), with four fields:
// "v", the version; "c", the campaign as JSON (see below); "s", the
// sub-line count (Campaign.Shards, at least 1; a record from before the
// field, without it, counts 1), kept apart so that the update script
// refuses to change it (couponq.CheckChange) in the step that checks the
// version; and "n", Campaign.Incarnation (a record without it counts 1).
// A counter, "prefix:{id}:incarnation" in the same slot, counts the ID's
// creations: Create increments it, Delete keeps it, so a re-created ID
// gets the next incarnation. An index sorted set, "prefix:campaigns", holds every ID with
// score 0, so it reads back in ID order (ZRANGEBYLEX); it is the only key
// outside the campaign's slot, and only Create, Delete and List touch it.
// Reading one campaign is one HMGET; nothing is read or written for
// campaigns nobody asks about, so idle campaigns cost nothing.
//
// The JSON of "c" is a stable encoding, independent of Go's struct layout:
//
//	{"id":"spring-sale","stock":1000,"per_user_limit":1,
//	 "opens_at":"2026-03-01T09:00:00Z","closes_at":"2026-03-02T09:00:00Z",
//	 "batch_size":100,"interval_ms":1000,"mode":"queue_first",
//	 "max_waiting":10000,"paused":false,"pre_queue_ms":600000}
//
// Times are RFC 3339 with nanoseconds in UTC, and left out when zero;
// max_waiting (Campaign.MaxWaiting), pre_queue_ms (Campaign.PreQueue) and
// shards (Campaign.Shards as given, e.g. "shards":4; 0 and 1 both mean one
// line) are left out when zero; Interval and PreQueue are whole
// milliseconds (a campaign with a finer one is refused with
// ErrInvalidCampaign rather than silently rounded); mode is "queue_first"
// or "validate_first". The version is not in the JSON. Fields a reader
// does not know are ignored, so a newer writer's additions do not break
// older readers (but an update from an older writer drops them).
// Campaigns come back with their times in UTC.
//
// Create is two round trips (the index, then a script that writes the
// record only if there is none), Update one (a compare-and-set script on the
// version), Delete two (a compare-and-delete script, then the index),
// Campaign one, and List two per 500 campaigns, the index page
// and a pipeline of the page's records (on a cluster, that pipeline goes to
// every master at once).
type Registry struct {
	rdb    redis.UniversalClient
	prefix string
	index  string
}

var _ couponq.Registry = (*Registry)(nil)

// NewRegistry validates cfg and returns a Registry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: redisq: registry: Client is required", couponq.ErrInvalidConfig)
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: redisq: registry: Prefix %q contains a brace", couponq.ErrInvalidConfig, cfg.Prefix)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	return &Registry{rdb: cfg.Client, prefix: cfg.Prefix, index: cfg.Prefix + ":campaigns"}, nil
}

// key is the hash holding campaign id.
func (r *Registry) key(id string) string { return r.prefix + ":{" + id + "}:campaign" }

// createdKey is the counter of id's creations (Campaign.Incarnation), in
// the record's slot; Delete leaves it.
func (r *Registry) createdKey(id string) string { return r.prefix + ":{" + id + "}:incarnation" }

// Campaign implements catalog.Catalog with one HMGET. An ID that does not
// validate cannot be stored, so it is unknown.
func (r *Registry) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: campaign %q: %w", id, err)
	}
	if err := couponq.ValidateID(id); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: campaign %q: %w: %w", id, couponq.ErrUnknownCampaign, err)
	}
	vals, err := r.rdb.HMGet(ctx, r.key(id), "v", "c", "s", "n").Result()
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: campaign %s: %w", id, err)
	}
	c, ok, err := decodeRecord(id, vals)
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: campaign %s: %w", id, err)
	}
	if !ok {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: campaign %s: %w", id, couponq.ErrUnknownCampaign)
	}
	return c, nil
}

// List implements couponq.Registry. It reads the index 500 IDs at a time
// and each chunk's records in one pipeline; IDs in the index without a
// record (a Create that failed after indexing) are skipped. List is not a
// snapshot: a campaign created or changed while it runs may be listed as
// before or after the change.
func (r *Registry) List(ctx context.Context) ([]couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisq: registry: list: %w", err)
	}
	var out []couponq.Campaign
	from := "-"
	for {
		ids, err := r.rdb.ZRangeByLex(ctx, r.index, &redis.ZRangeBy{Min: from, Max: "+", Count: listChunk}).Result()
		if err != nil {
			return nil, fmt.Errorf("redisq: registry: list: %w", err)
		}
		if len(ids) == 0 {
			return out, nil
		}
		cmds := make([]*redis.SliceCmd, len(ids))
		if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HMGet(ctx, r.key(id), "v", "c", "s", "n")
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("redisq: registry: list: %w", err)
		}
		for i, cmd := range cmds {
			c, ok, err := decodeRecord(ids[i], cmd.Val())
			if err != nil {
				return nil, fmt.Errorf("redisq: registry: list: campaign %s: %w", ids[i], err)
			}
			if ok {
				out = append(out, c)
			}
		}
		if len(ids) < listChunk {
			return out, nil
		}
		from = "(" + ids[len(ids)-1]
	}
}

// Create implements couponq.Registry. It adds the ID to the index first, so
// a stored campaign is always listed (a failure after that leaves an index
// entry without a record, which List skips and a retried Create fills),
// then writes the record unless one exists. A campaign that does not
// validate, or has a Version other than 0, is refused with an error
// wrapping couponq.ErrInvalidCampaign before anything is written.
func (r *Registry) Create(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create %s: %w", c.ID, err)
	}
	if err := c.Validate(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create: %w", err)
	}
	if c.Version != 0 {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create: %w: %s: version %d, must be 0",
			couponq.ErrInvalidCampaign, c.ID, c.Version)
	}
	data, err := encodeCampaign(c.WithDefaults())
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create: %w", err)
	}
	if err := r.rdb.ZAdd(ctx, r.index, redis.Z{Score: 0, Member: c.ID}).Err(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create %s: index: %w", c.ID, err)
	}
	n, err := registryCreateScript.Run(ctx, r.rdb, []string{r.key(c.ID), r.createdKey(c.ID)}, data, max(c.Shards, 1)).Int64()
	if code, _ := scriptError(err); code == errCodeExists {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create: %w: %q", couponq.ErrCampaignExists, c.ID)
	}
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: create %s: %w", c.ID, err)
	}
	created, err := decodeCampaign(c.ID, 1, data)
	created.Incarnation = n
	return created, err
}

// Update implements couponq.Registry with one compare-and-set script on the
// version. A campaign that does not validate, or has no Version (0: it was
// not read from a Registry), is refused with an error wrapping
// couponq.ErrInvalidCampaign before anything is written; so is one whose
// Shards differ from the stored campaign's (couponq.CheckChange: the
// script compares them, 0 and 1 alike, after the version). Update does not
// know how many units were issued: a caller lowering Stock checks it
// against the issued count (Queue.IssuedCount) first.
func (r *Registry) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update %s: %w", c.ID, err)
	}
	if err := c.Validate(); err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w", err)
	}
	if c.Version <= 0 {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w: %s: version %d, must name the version read (> 0)",
			couponq.ErrInvalidCampaign, c.ID, c.Version)
	}
	data, err := encodeCampaign(c.WithDefaults())
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w", err)
	}
	vn, err := registryUpdateScript.Run(ctx, r.rdb, []string{r.key(c.ID)}, c.Version, data, max(c.Shards, 1)).Int64Slice()
	switch code, detail := scriptError(err); code {
	case errCodeShards:
		stored, perr := strconv.Atoi(detail)
		if perr != nil {
			return couponq.Campaign{}, fmt.Errorf("redisq: registry: update %s: %w", c.ID, err)
		}
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w", catalog.CheckChange(couponq.Campaign{ID: c.ID, Shards: stored}, c))
	case errCodeUnknown:
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w: %q", couponq.ErrUnknownCampaign, c.ID)
	case errCodeConflict:
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update: %w: %s: stored version %s, update from version %d",
			couponq.ErrVersionConflict, c.ID, detail, c.Version)
	}
	if err != nil {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update %s: %w", c.ID, err)
	}
	if len(vn) != 2 {
		return couponq.Campaign{}, fmt.Errorf("redisq: registry: update %s: unexpected reply %v", c.ID, vn)
	}
	updated, err := decodeCampaign(c.ID, vn[0], data)
	updated.Incarnation = vn[1]
	return updated, err
}

// scriptError splits an error a registry script answered with into its
// code and the rest; "" for any other error.
func scriptError(err error) (code, detail string) {
	var re redis.Error
	if !errors.As(err, &re) {
		return "", ""
	}
	code, detail, _ = strings.Cut(re.Error(), " ")
	switch code {
	case errCodeExists, errCodeUnknown, errCodeConflict, errCodeShards:
		return code, detail
	}
	return "", ""
}

// campaignJSON is the stored encoding of a campaign; see Registry. Its
// field names are the format: do not rename them.
type campaignJSON struct {
	ID           string `json:"id"`
	Stock        int64  `json:"stock"`
	PerUserLimit int    `json:"per_user_limit"`
	OpensAt      string `json:"opens_at,omitempty"`
	ClosesAt     string `json:"closes_at,omitempty"`
	BatchSize    int    `json:"batch_size"`
	IntervalMS   int64  `json:"interval_ms"`
	Mode         string `json:"mode"`
	MaxWaiting   int64  `json:"max_waiting,omitempty"`
	Paused       bool   `json:"paused"`
	Shards       int    `json:"shards,omitempty"`
	PreQueueMS   int64  `json:"pre_queue_ms,omitempty"`
}

// Mode names in the stored encoding, fixed here rather than taken from
// Mode.String so that renaming the latter does not change the format.
var modeNames = map[couponq.Mode]string{couponq.QueueFirst: "queue_first", couponq.ValidateFirst: "validate_first"}

// encodeCampaign encodes a validated campaign with its defaults applied.
func encodeCampaign(c couponq.Campaign) (string, error) {
	if c.Interval%time.Millisecond != 0 {
		return "", fmt.Errorf("%w: %s: interval %s is not a whole number of milliseconds",
			couponq.ErrInvalidCampaign, c.ID, c.Interval)
	}
	if c.PreQueue%time.Millisecond != 0 {
		return "", fmt.Errorf("%w: %s: pre-queue %s is not a whole number of milliseconds",
			couponq.ErrInvalidCampaign, c.ID, c.PreQueue)
	}
	opens, err := encodeTime(c.ID, "opens at", c.OpensAt)
	if err != nil {
		return "", err
	}
	closes, err := encodeTime(c.ID, "closes at", c.ClosesAt)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(campaignJSON{
		ID: c.ID, Stock: c.Stock, PerUserLimit: c.PerUserLimit, OpensAt: opens, ClosesAt: closes,
		BatchSize: c.BatchSize, IntervalMS: c.Interval.Milliseconds(), Mode: modeNames[c.Mode],
		MaxWaiting: c.MaxWaiting, Paused: c.Paused, Shards: c.Shards, PreQueueMS: c.PreQueue.Milliseconds(),
	})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func encodeTime(id, what string, t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("%w: %s: %s year %d, outside 1 to 9999", couponq.ErrInvalidCampaign, id, what, y)
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// decodeRecord reads an HMGET of "v", "c", "s" and "n"; false if there is
// no record. The sub-line count is "s" when the record has it: it is what
// updates are checked against, and a writer that does not know Shards
// (an older couponq) rewrites "c" without it but leaves "s" alone.
func decodeRecord(id string, vals []any) (couponq.Campaign, bool, error) {
	if len(vals) != 4 {
		return couponq.Campaign{}, false, fmt.Errorf("unexpected reply %v", vals)
	}
	if vals[0] == nil && vals[1] == nil {
		return couponq.Campaign{}, false, nil
	}
	vs, _ := vals[0].(string)
	data, _ := vals[1].(string)
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || v <= 0 || data == "" {
		return couponq.Campaign{}, false, fmt.Errorf("corrupt record: version %v, campaign %v", vals[0], vals[1])
	}
	c, err := decodeCampaign(id, v, data)
	if err != nil {
		return c, false, err
	}
	if ss, _ := vals[2].(string); ss != "" {
		n, err := strconv.Atoi(ss)
		if err != nil || n < 1 {
			return couponq.Campaign{}, false, fmt.Errorf("corrupt record: shards %v", vals[2])
		}
		if n > 1 {
			c.Shards = n
		}
	}
	c.Incarnation = 1
	if ns, _ := vals[3].(string); ns != "" {
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil || n < 1 {
			return couponq.Campaign{}, false, fmt.Errorf("corrupt record: incarnation %v", vals[3])
		}
		c.Incarnation = n
	}
	return c, true, nil
}

func decodeCampaign(id string, version int64, data string) (couponq.Campaign, error) {
	var j campaignJSON
	if err := json.Unmarshal([]byte(data), &j); err != nil {
		return couponq.Campaign{}, fmt.Errorf("corrupt record: %w", err)
	}
	if j.ID != id {
		return couponq.Campaign{}, fmt.Errorf("corrupt record: it names campaign %q", j.ID)
	}
	c := couponq.Campaign{
		ID: id, Stock: j.Stock, PerUserLimit: j.PerUserLimit, BatchSize: j.BatchSize,
		Interval: time.Duration(j.IntervalMS) * time.Millisecond, MaxWaiting: j.MaxWaiting, Paused: j.Paused,
		Shards: j.Shards, PreQueue: time.Duration(j.PreQueueMS) * time.Millisecond, Version: version,
	}
	var err error
	if c.OpensAt, err = decodeTime(j.OpensAt); err != nil {
		return couponq.Campaign{}, fmt.Errorf("corrupt record: opens_at: %w", err)
	}
	if c.ClosesAt, err = decodeTime(j.ClosesAt); err != nil {
		return couponq.Campaign{}, fmt.Errorf("corrupt record: closes_at: %w", err)
	}
	switch j.Mode {
	case modeNames[couponq.QueueFirst]:
		c.Mode = couponq.QueueFirst
	case modeNames[couponq.ValidateFirst]:
		c.Mode = couponq.ValidateFirst
	default:
		return couponq.Campaign{}, fmt.Errorf("corrupt record: unknown mode %q", j.Mode)
	}
	return c, nil
}

func decodeTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

var _ couponq.Registry = (*Registry)(nil)

// Delete implements couponq.Registry with a compare-and-delete
// script on the record's version, then a ZREM of the ID from the index. A
// version <= 0 is refused with an error wrapping couponq.ErrInvalidCampaign
// before anything is written. Delete touches only the campaign's record:
// its Queue keys are put away by Queue.Archive.
//
// Once the record is deleted the campaign is gone, so Delete returns nil
// even if the ZREM then fails: the index entry it leaves is skipped by List
// and reused by Create, as after a failed Create. A Create of the same ID
// racing the Delete (between Create's index write and its record write)
// can leave the new record unlisted, though Campaign finds it; any later
// Create of the ID lists it again (and answers ErrCampaignExists).
func (r *Registry) Delete(ctx context.Context, id string, version int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisq: registry: delete %s: %w", id, err)
	}
	if version <= 0 {
		return fmt.Errorf("redisq: registry: delete: %w: %s: version %d, must name the version read (> 0)",
			couponq.ErrInvalidCampaign, id, version)
	}
	if err := couponq.ValidateID(id); err != nil {
		// An ID that does not validate cannot be stored.
		return fmt.Errorf("redisq: registry: delete %q: %w: %w", id, couponq.ErrUnknownCampaign, err)
	}
	err := registryDeleteScript.Run(ctx, r.rdb, []string{r.key(id), r.createdKey(id)}, version).Err()
	switch code, detail := scriptError(err); code {
	case errCodeUnknown:
		return fmt.Errorf("redisq: registry: delete: %w: %q", couponq.ErrUnknownCampaign, id)
	case errCodeConflict:
		return fmt.Errorf("redisq: registry: delete: %w: %s: stored version %s, delete from version %d",
			couponq.ErrVersionConflict, id, detail, version)
	}
	if err != nil {
		return fmt.Errorf("redisq: registry: delete %s: %w", id, err)
	}
	// The record is gone: unlist it even if the caller has gone meanwhile.
	_ = r.rdb.ZRem(context.WithoutCancel(ctx), r.index, id).Err()
	return nil
}
