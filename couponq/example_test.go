package couponq_test

import (
	"context"
	"fmt"

	"github.com/couponq/couponq/couponq"
)

func ExampleStoreFunc() {
	// A host plugs its own persistence in as a Store; storetest.Run checks it.
	var store couponq.Store = couponq.StoreFunc(func(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
		// INSERT ... ON CONFLICT (key) DO NOTHING, in one transaction that
		// checks the user's count and the campaign's count.
		return couponq.Issuance{Outcome: couponq.Issued, ID: "issuance-" + r.Key}, nil
	})
	iss, _ := store.Issue(context.Background(), couponq.IssueRequest{Campaign: "c", User: "u", Key: "c/1/u", Stock: 1})
	fmt.Println(iss.Outcome, iss.ID)
	// Output: issued issuance-c/1/u
}

func ExampleValidateID() {
	fmt.Println(couponq.ValidateID("user-42@example.com"))
	fmt.Println(couponq.ValidateID("{tag}"))
	// Output:
	// <nil>
	// couponq: invalid id: byte 0 ('{') not allowed
}

// An audit replays a pre-queue's seating from its record (the seed and the
// number of entries seated, which the scheduler logs and reports as
// TickEvent.Seating): the place of each entry number at arrival.
func ExampleSeatOrder() {
	rec := couponq.Seating{Seed: 2026, Entries: 8, Done: true}
	for place, arrival := range couponq.SeatOrder(rec.Seed, rec.Entries) {
		fmt.Printf("place %d: arrived %d\n", place+1, arrival)
	}
	// Output:
	// place 1: arrived 1
	// place 2: arrived 6
	// place 3: arrived 3
	// place 4: arrived 8
	// place 5: arrived 2
	// place 6: arrived 5
	// place 7: arrived 4
	// place 8: arrived 7
}
