package issuing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
)

// BenchmarkHandle is one issuer step on the in-memory backends: per-user
// lock, Store, outcome recorded, lock released.
func BenchmarkHandle(b *testing.B) {
	c := couponq.Campaign{ID: "bench", Stock: 1 << 40}
	cat, err := memline.NewRegistry(c)
	if err != nil {
		b.Fatal(err)
	}
	i, err := issuing.New(issuing.Config{
		Consumer: couponq.ConsumerFunc(func(context.Context, couponq.Handler) error { return nil }),
		Store:    memory.NewStore(), Catalog: cat, Recorder: memline.NewQueue(nil), Locker: lock.NewMemory(),
	})
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]couponq.Entry, b.N)
	for n := range entries {
		entries[n] = couponq.Entry{Campaign: c.ID, User: fmt.Sprintf("u%d", n), Number: int64(n + 1), AdmittedAt: time.Now()}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		if err := i.Handle(ctx, entries[n]); err != nil {
			b.Fatal(err)
		}
	}
}
