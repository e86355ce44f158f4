package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
)

// serverEnv returns the environment variable, or ends the test: a failure
// under CI, a skip elsewhere.
func serverEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		msg := name + " is not set; start the servers with scripts/postgres.sh start && scripts/kafka.sh start 1 and source their env files"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// The tables as in couponq/pgstore/schema.sql, copied so the test does not
// depend on the code under test.
const testSchema = `
CREATE TABLE couponq_counters (
    campaign text PRIMARY KEY,
    issued   bigint NOT NULL CHECK (issued >= 0),
    stock    bigint NOT NULL CHECK (stock > 0),
    CHECK (issued <= stock)
) WITH (fillfactor = 50);
CREATE TABLE couponq_issuances (
    campaign  text        NOT NULL,
    user_id   text        NOT NULL,
    n         bigint      NOT NULL CHECK (n >= 1),
    idem_key  text        NOT NULL,
    id        text        NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign, user_id, n),
    UNIQUE (campaign, idem_key)
);`

// withSearchPath returns dsn selecting the schema.
func withSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		// A key=value DSN.
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestCheckIntegration runs Check against a real PostgreSQL schema and a
// real Kafka topic it fills itself: it must read every row and every
// message (across partitions, some of them empty), compute the figures
// from them, and find the two violations planted (u3, entry 3, told sold
// out while entry 4 holds a unit, read from the Store's idempotency key;
// a unit issued to a user who never was on the topic). A missing topic or
// tables are errors.
func TestCheckIntegration(t *testing.T) {
	dsn := serverEnv(t, "COUPONQ_POSTGRES_DSN")
	brokers := serverEnv(t, "COUPONQ_KAFKA_BROKERS")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A fresh schema, dropped at the end.
	schema := randomName("couponq_check_")
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		c, err := pgx.Connect(cctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(cctx)
		if _, err := c.Exec(cctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	runDSN := withSearchPath(t, dsn, schema)
	conn, err := pgx.Connect(ctx, runDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, testSchema); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	ms := func(v int) time.Time { return base.Add(time.Duration(v) * time.Millisecond) }
	for _, r := range []struct {
		campaign, user string
		n, entry       int
		id             string
		at             time.Time
	}{
		{"c1", "u1", 1, 1, "a1", ms(20)},
		{"c1", "u2", 1, 2, "a2", ms(40)},
		{"c1", "u4", 1, 4, "a4", ms(1200)}, // u3's entry 3 was sold out: an inversion
		{"c2", "v1", 1, 1, "b1", ms(60)},   // never on the topic
		{"c3", "w2", 1, 2, "x1", ms(1300)}, // admitted 1 s after w1's 202, w1 sold out: an inversion over sub-lines
	} {
		if _, err := conn.Exec(ctx, `INSERT INTO couponq_issuances (campaign, user_id, n, idem_key, id, issued_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.campaign, r.user, r.n, fmt.Sprintf("%s/%d/%s", r.campaign, r.entry, r.user), r.id, r.at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO couponq_counters (campaign, issued, stock) VALUES ('c1', 3, 3), ('c2', 1, 1), ('c3', 1, 1)`); err != nil {
		t.Fatal(err)
	}

	// A fresh topic with 4 partitions.
	topic := randomName("couponq-check-")
	ac, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ac.Close) // after the topic's deletion below (cleanups run last first)
	res, err := ac.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 4, ReplicationFactor: 1}}, kafka.SetAdminOperationTimeout(30*time.Second))
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("create topic: %v %v", err, res)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if _, err := ac.DeleteTopics(cctx, []string{topic}); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": brokers, "enable.idempotence": true, "acks": "all"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	produce := func(key, value string, at time.Time) {
		t.Helper()
		done := make(chan kafka.Event, 1)
		if err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(key), Value: []byte(value), Timestamp: at,
		}, done); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-done:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("produce %s: %v", key, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	entryAt := func(campaign, user string, n int, admitted time.Time) string {
		return fmt.Sprintf(`{"v":1,"campaign":%q,"user":%q,"entry":%d,"admitted_at_us":%d,"request_id":"r-%s","trace":""}`, campaign, user, n, admitted.UnixMicro(), user)
	}
	entry := func(campaign, user string, n int) string { return entryAt(campaign, user, n, base) }
	produce("c1/u1", entry("c1", "u1", 1), ms(0))
	produce("c1/u2", entry("c1", "u2", 2), ms(0))
	produce("c1/u3", entry("c1", "u3", 3), ms(100))
	produce("c1/u1", entry("c1", "u1", 1), ms(150)) // a redelivery
	produce("c1/u4", entry("c1", "u4", 4), ms(1150))
	produce("junk", "not json", ms(200))
	produce("c3/w1", entryAt("c3", "w1", 1, ms(0)), ms(300))
	produce("c3/w2", entryAt("c3", "w2", 2, ms(1010)), ms(1300))

	in := Inputs{
		Campaigns: []Campaign{
			{ID: "c1", Stock: 3, BatchSize: 2, Interval: 100 * time.Millisecond},
			{ID: "c2", Stock: 1, BatchSize: 1, Interval: 100 * time.Millisecond},
			{ID: "c3", Stock: 1, BatchSize: 1, Interval: 100 * time.Millisecond, Shards: 2},
		},
		Clients: []Client{
			{User: "u1", Campaign: "c1", Presses: 1, Accepted: true, Entry: 1, API: 1, Final: "issued", IssuanceID: "a1"},
			{User: "u2", Campaign: "c1", Presses: 1, Accepted: true, Entry: 2, API: 1, Final: "issued", IssuanceID: "a2"},
			{User: "u3", Campaign: "c1", Presses: 1, Accepted: true, Entry: 3, API: 2, Final: "rejected:sold_out"},
			{User: "u4", Campaign: "c1", Presses: 1, Accepted: true, Entry: 4, API: 2, Final: "issued", IssuanceID: "a4"},
			{User: "v1", Campaign: "c2", Presses: 1, Accepted: true, Entry: 1, API: 1, Final: "issued", IssuanceID: "b1"},
			{User: "w1", Campaign: "c3", Presses: 1, Accepted: true, AcceptedAt: ms(10), Entry: 1, API: 1, Final: "rejected:sold_out"},
			{User: "w2", Campaign: "c3", Presses: 1, Accepted: true, AcceptedAt: ms(1020), Entry: 2, API: 1, Final: "issued", IssuanceID: "x1"},
		},
		PostgresDSN:  runDSN,
		KafkaBrokers: brokers,
		Topic:        topic,
	}
	r, err := Check(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"campaign c1: inversions: 1 users were told sold out while a user with a later entry number holds a unit (e.g. entry 3 (u3) sold out but entry 4 (u4) issued)",
		"campaign c2: issued without passing the topic: 1 users hold a Store row but never appear on the topic (e.g. v1)",
		fmt.Sprintf("campaign c3: inversions: 1 users were told sold out while a user admitted more than 15ms after their 202 holds a unit (e.g. w1 (entry 1; 202 at %s) sold out but w2 (entry 2; admitted at %s, 1s later) issued)", clock(ms(10)), clock(ms(1010))),
	}
	if !slices.Equal(r.Violations, want) {
		t.Errorf("violations = %q, want %q", r.Violations, want)
	}
	eq(t, "Topic.Partitions", r.Topic.Partitions, 4)
	eq(t, "Topic.Messages", r.Topic.Messages, 7)
	eq(t, "Topic.Undecodable", r.Topic.Undecodable, 1)
	c1, c2, c3 := r.Campaigns[0], r.Campaigns[1], r.Campaigns[2]
	eq(t, "c1 Rows", c1.Rows, 3)
	eq(t, "c1 CounterIssued", c1.CounterIssued, 3)
	eq(t, "c1 ToldIssued", c1.ToldIssued, 3)
	eq(t, "c1 Messages", c1.Messages, 5)
	eq(t, "c1 DispatchedUsers", c1.DispatchedUsers, 4)
	eq(t, "c1 Redeliveries", c1.Redeliveries, 1)
	// Topic times 0, 0, 100, 150, 1150 ms: [100, 200) holds two, and
	// [0, 1000) four.
	eq(t, "c1 TopicMax1", c1.TopicMax1, 2)
	eq(t, "c1 TopicMax10", c1.TopicMax10, 4)
	eq(t, "c1 TopicMax10At", c1.TopicMax10At.Equal(ms(0)), true)
	// Store times 20, 40, 1200 ms.
	eq(t, "c1 StoreMax1", c1.StoreMax1, 2)
	eq(t, "c1 StoreMax1At", c1.StoreMax1At.Equal(ms(20)), true)
	eq(t, "c1 StoreMax10", c1.StoreMax10, 2)
	eq(t, "c1 Inversions", c1.Inversions, 1)
	eq(t, "c2 Rows", c2.Rows, 1)
	eq(t, "c2 RowsNotOnTopic", c2.RowsNotOnTopic, 1)
	eq(t, "c3 Inversions", c3.Inversions, 1) // the admission time came through the topic
	if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.HasPrefix(s, "topic: 1 messages could not be decoded") }) {
		t.Errorf("no undecodable note in %q", r.Notes)
	}

	// A topic that does not exist is an error, not an empty topic.
	in.Topic = randomName("couponq-check-missing-")
	if _, err := Check(ctx, in); err == nil {
		t.Errorf("Check of a missing topic succeeded")
	}
	// A schema without the tables is an error: the DSN's search_path, not
	// a default schema, selects what is read.
	in.Topic, in.PostgresDSN = topic, withSearchPath(t, dsn, randomName("nope_"))
	if _, err := Check(ctx, in); err == nil {
		t.Errorf("Check without the tables succeeded")
	}
}
