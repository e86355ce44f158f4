package shard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/shard"
)

// A campaign of 3 sub-lines: each user is admitted to one sub-line, and a
// lease hands the entries out in admission order again.
func Example() {
	ctx := context.Background()
	campaigns, _ := memline.NewRegistry(couponq.Campaign{ID: "launch", Stock: 100, Shards: 3})
	q, _ := shard.New(shard.Config{Queue: memline.NewQueue(nil), Catalog: campaigns})
	svc, _ := admission.New(admission.Config{Catalog: campaigns, Queue: q})

	for _, u := range []string{"ana", "ben", "cho", "dev", "eli"} {
		t, _ := svc.Admit(ctx, couponq.Request{Campaign: "launch", User: u})
		fmt.Printf("%s: sub-line %d, entry %d\n", u, shard.Of(u, 3), t.Entry)
		time.Sleep(time.Millisecond) // distinct admission times
	}
	time.Sleep(shard.DefaultLag) // the watermark
	batch, _ := q.Lease(ctx, "launch", 10, time.Minute)
	for _, e := range batch {
		fmt.Print(e.User, " ")
	}
	fmt.Println()
	// Output:
	// ana: sub-line 2, entry 5
	// ben: sub-line 0, entry 3
	// cho: sub-line 2, entry 8
	// dev: sub-line 1, entry 4
	// eli: sub-line 2, entry 11
	// ana ben cho dev eli
}
