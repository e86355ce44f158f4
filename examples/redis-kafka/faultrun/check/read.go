package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
)

// Check reads the Store and the topic and checks every invariant against
// the run's records. It reads the Store in one read-only repeatable-read
// transaction, then the topic up to each partition's high watermark at the
// time of the read; ctx bounds both (without a deadline, the topic read
// gives up after topicReadLimit). An error means the checker could not read
// what it needs; broken invariants are in the Report.
func Check(ctx context.Context, in Inputs) (*Report, error) {
	if in.PostgresDSN == "" {
		return nil, errors.New("check: no PostgresDSN")
	}
	if in.KafkaBrokers == "" || in.Topic == "" {
		return nil, errors.New("check: no KafkaBrokers or Topic")
	}
	ids := make([]string, len(in.Campaigns))
	for i, c := range in.Campaigns {
		ids[i] = c.ID
	}
	store, err := readStore(ctx, in.PostgresDSN, ids)
	if err != nil {
		return nil, fmt.Errorf("check: reading the Store: %w", err)
	}
	topic, err := readTopic(ctx, in.KafkaBrokers, in.Topic)
	if err != nil {
		return nil, fmt.Errorf("check: reading topic %s: %w", in.Topic, err)
	}
	return evaluate(in, store, topic), nil
}

// readStore reads every issuance row and the counter row of each campaign,
// in one snapshot. The DSN's search_path selects the schema.
func readStore(ctx context.Context, dsn string, campaigns []string) (storeData, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return storeData{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return storeData{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	out := storeData{Campaigns: make(map[string]storeCampaign, len(campaigns))}
	for _, c := range campaigns {
		rows, err := tx.Query(ctx, `SELECT user_id, n, idem_key, id, issued_at FROM couponq_issuances WHERE campaign = $1 ORDER BY issued_at, user_id, n`, c)
		if err != nil {
			return storeData{}, fmt.Errorf("issuances of %s: %w", c, err)
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storeRow, error) {
			var s storeRow
			err := row.Scan(&s.User, &s.N, &s.Key, &s.ID, &s.IssuedAt)
			return s, err
		})
		if err != nil {
			return storeData{}, fmt.Errorf("issuances of %s: %w", c, err)
		}
		sc := storeCampaign{Rows: list}
		var cr counterRow
		err = tx.QueryRow(ctx, `SELECT issued, stock FROM couponq_counters WHERE campaign = $1`, c).Scan(&cr.Issued, &cr.Stock)
		switch {
		case err == nil:
			sc.Counter = &cr
		case errors.Is(err, pgx.ErrNoRows):
		default:
			return storeData{}, fmt.Errorf("counter of %s: %w", c, err)
		}
		out.Campaigns[c] = sc
	}
	return out, tx.Commit(ctx)
}

// topicReadLimit bounds the topic read when ctx has no deadline.
const topicReadLimit = 5 * time.Minute

// wireEntry is the topic message's JSON, decoded here without the code
// under test.
type wireEntry struct {
	V        *int   `json:"v"`
	Campaign string `json:"campaign"`
	User     string `json:"user"`
	Entry    int64  `json:"entry"`
	// AdmittedAtUS is when the entry was admitted, in Unix microseconds
	// (the line's admission time, to its 10 ms clock checkpoints); 0 when
	// the writer had none.
	AdmittedAtUS int64 `json:"admitted_at_us"`
}

// decodeEntry decodes one message value; the error says why it is not an entry.
func decodeEntry(b []byte) (wireEntry, error) {
	var e wireEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("not JSON: %v", err)
	}
	switch {
	case e.V == nil || *e.V != 1:
		return e, errors.New("not version 1")
	case e.Campaign == "" || e.User == "":
		return e, errors.New("no campaign or user")
	case e.Entry <= 0:
		return e, errors.New("entry not positive")
	}
	return e, nil
}

// readTopic reads every message of the topic from the beginning of each
// partition to its high watermark as queried at the start, with a fresh
// consumer group that commits nothing.
func readTopic(ctx context.Context, brokers, topic string) (topicData, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, topicReadLimit)
		defer cancel()
	}
	gid := make([]byte, 8)
	_, _ = rand.Read(gid)
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":        brokers,
		"group.id":                 "couponq-check-" + hex.EncodeToString(gid),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        "earliest",
		"enable.partition.eof":     true,
		"allow.auto.create.topics": false,
	})
	if err != nil {
		return topicData{}, err
	}
	defer func() { _ = c.Close() }()

	// timeout is the per-call timeout for the blocking metadata calls: what
	// is left of ctx, at most 10 s.
	timeout := func() int {
		d := 10 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			d = min(d, time.Until(dl))
		}
		return max(int(d.Milliseconds()), 1)
	}
	md, err := c.GetMetadata(&topic, false, timeout())
	if err != nil {
		return topicData{}, fmt.Errorf("metadata: %w", err)
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return topicData{}, errors.New("topic not in the metadata")
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return topicData{}, fmt.Errorf("metadata: %w", tm.Error)
	}
	parts := make([]int32, len(tm.Partitions))
	for i, p := range tm.Partitions {
		parts[i] = p.ID
	}
	slices.Sort(parts)

	out := topicData{Partitions: len(parts)}
	high := map[int32]int64{} // partitions still to read, to their high watermark
	var assign []kafka.TopicPartition
	for _, p := range parts {
		low, hi, err := c.QueryWatermarkOffsets(topic, p, timeout())
		if err != nil {
			return topicData{}, fmt.Errorf("watermarks of partition %d: %w", p, err)
		}
		if hi > low {
			high[p] = hi
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
		}
	}
	if len(assign) == 0 {
		return out, nil
	}
	if err := c.Assign(assign); err != nil {
		return topicData{}, fmt.Errorf("assign: %w", err)
	}
	var lastErr error
	for len(high) > 0 {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				err = fmt.Errorf("%w (last consumer error: %v)", err, lastErr)
			}
			return topicData{}, fmt.Errorf("%d partitions not read to their high watermark: %w", len(high), err)
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			p, off := e.TopicPartition.Partition, int64(e.TopicPartition.Offset)
			h, ok := high[p]
			if !ok {
				continue
			}
			if off >= h { // past the snapshot (offsets may skip)
				delete(high, p)
				continue
			}
			w, err := decodeEntry(e.Value)
			if err != nil {
				out.Undecodable++
				if len(out.UndecodableExamples) < maxExamples {
					out.UndecodableExamples = append(out.UndecodableExamples, fmt.Sprintf("%d/%d: %v", p, off, err))
				}
			} else {
				m := topicMsg{Campaign: w.Campaign, User: w.User, Entry: w.Entry, Partition: p, Offset: off}
				if w.AdmittedAtUS != 0 {
					m.AdmittedAt = time.UnixMicro(w.AdmittedAtUS).UTC()
				}
				if e.TimestampType != kafka.TimestampNotAvailable {
					m.At = e.Timestamp
				}
				out.Messages = append(out.Messages, m)
			}
			if off >= h-1 {
				delete(high, p)
			}
		case kafka.PartitionEOF:
			if h, ok := high[e.Partition]; ok && int64(e.Offset) >= h {
				delete(high, e.Partition)
			}
		case kafka.Error:
			if e.IsFatal() {
				return topicData{}, e
			}
			lastErr = e
		}
	}
	return out, nil
}
