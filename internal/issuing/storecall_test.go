package issuing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/issuer"
)

// OnStoreCall reports every Store call: one per entry on the single path,
// one per batch (with its size) on the batch path.
func TestOnStoreCall(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			c := couponq.Campaign{ID: "sc", Stock: 100, BatchSize: 10, Interval: time.Second}
			catalog, err := memline.NewRegistry(c)
			require.NoError(t, err)
			q := memline.NewQueue(nil)
			var mu sync.Mutex
			var calls []issuer.StoreCall
			cfg := issuing.Config{Consumer: couponq.ConsumerFunc(func(context.Context, couponq.Handler) error { return nil }),
				Store: memory.NewStore(), Catalog: catalog, Recorder: q,
				OnStoreCall: func(ev issuer.StoreCall) { mu.Lock(); calls = append(calls, ev); mu.Unlock() }}
			iss, err := issuing.New(cfg)
			require.NoError(t, err)
			entries := make([]couponq.Entry, 5)
			for k := range entries {
				entries[k] = couponq.Entry{Campaign: "sc", User: fmt.Sprintf("u%d", k), Number: int64(k + 1)}
			}
			ctx := context.Background()
			if batch {
				require.NoError(t, iss.HandleBatch(ctx, entries))
				require.Len(t, calls, 1)
				assert.Equal(t, 5, calls[0].Entries)
			} else {
				for _, e := range entries {
					require.NoError(t, iss.Handle(ctx, e))
				}
				require.Len(t, calls, 5)
				for _, ev := range calls {
					assert.Equal(t, 1, ev.Entries)
				}
			}
			for _, ev := range calls {
				assert.NoError(t, ev.Err)
				assert.Positive(t, ev.Duration)
			}
		})
	}
}
