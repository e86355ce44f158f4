package redisline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redistest"
)

func (q *Queue) cachedKeys() int {
	n := 0
	q.keyCache.Range(func(any, any) bool { n++; return true })
	return n
}

// KeysFor names every key "prefix:{campaign}:<name>", in one allocation.
func TestKeysFor(t *testing.T) {
	k := KeysFor("pfx", "spring-sale")
	assert.Equal(t, Keys{
		Seq: "pfx:{spring-sale}:seq", Line: "pfx:{spring-sale}:line", Out: "pfx:{spring-sale}:out",
		Flight: "pfx:{spring-sale}:flight", Held: "pfx:{spring-sale}:held", Done: "pfx:{spring-sale}:done",
		SoldOut: "pfx:{spring-sale}:soldout", Clock: "pfx:{spring-sale}:clock", Issued: "pfx:{spring-sale}:issued",
		Trace: "pfx:{spring-sale}:trace", Seat: "pfx:{spring-sale}:seat",
		V1Users: "pfx:{spring-sale}:v1:users", V1Count: "pfx:{spring-sale}:v1:count",
	}, k)
	assert.Equal(t, "pfx:{spring-sale}:q:3", k.OrderBucket(3))
	assert.Equal(t, "pfx:{spring-sale}:u:8191", k.UserBucket(8191))
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { k = KeysFor("pfx", "spring-sale") }))
}

// Reads of campaigns Redis holds nothing of (Status and LineStats of a
// made-up ID) leave no key names behind; admission remembers them, Archive
// forgets them, a kept outcome read after Archive remembers them again; and
// however many campaigns are written to, the cache holds keyCacheMax at
// most.
func TestKeyCacheHoldsOnlyCampaignsWithKeys(t *testing.T) {
	c := redistest.Client(t)
	q, err := New(Config{Client: c, Prefix: redistest.Prefix(t, c)})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 2_000 {
		id := fmt.Sprint("made-up-", i)
		_, err := q.Status(ctx, id, "mallory")
		require.ErrorIs(t, err, couponq.ErrNotFound)
		s, err := q.LineStats(ctx, id)
		require.NoError(t, err)
		require.Zero(t, s)
	}
	assert.Zero(t, q.cachedKeys(), "made-up IDs left key names behind")

	_, err = q.Admit(ctx, couponq.Admission{Campaign: "real", User: "ann", At: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, 1, q.cachedKeys(), "admission remembers the campaign's key names")
	es, err := q.Lease(ctx, "real", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.NoError(t, q.Record(ctx, "real", couponq.Result{Entry: es[0], State: couponq.StateIssued, IssuanceID: "i-1"}))
	require.NoError(t, q.Archive(ctx, "real", time.Hour))
	assert.Zero(t, q.cachedKeys(), "Archive forgets the key names")
	st, err := q.Status(ctx, "real", "ann")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateIssued, st.State, "the kept outcome still answers")
	assert.Equal(t, 1, q.cachedKeys(), "a found entry remembers the key names")

	for i := range 3 * keyCacheMax {
		q.keys(fmt.Sprint("written-", i))
	}
	assert.LessOrEqual(t, q.cachedKeys(), keyCacheMax)
	assert.LessOrEqual(t, q.keyCount.Load(), int64(keyCacheMax))
}

var keysSink []string

// BenchmarkKeys measures naming an admission's keys: from the cache (a
// campaign admitted to before, the hot path) and built afresh (a read of a
// campaign not cached: KeysFor).
func BenchmarkKeys(b *testing.B) {
	q := &Queue{prefix: DefaultPrefix}
	q.keys("spring-sale-2026")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			keysSink = q.keys("spring-sale-2026").AdmitKeys()
		}
	})
	b.Run("built", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, _ := q.lookKeys("summer-sale-2026")
			keysSink = k.AdmitKeys()
		}
	})
}
