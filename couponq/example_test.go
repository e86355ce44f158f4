package couponq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock"
)

// The whole V2 pipeline in one process with the in-memory backends.
func Example() {
	ctx := context.Background()
	campaign := couponq.Campaign{ID: "spring-sale", Stock: 2, BatchSize: 10, Interval: 10 * time.Millisecond}
	catalog, _ := couponq.NewCampaigns(campaign)
	queue, store, locker := memory.NewQueue(nil), memory.NewStore(), lock.NewMemory()
	transport, _ := dispatch.NewMemory(dispatch.MemoryConfig{})

	svc, _ := admission.New(admission.Config{Catalog: catalog, Queue: queue})
	throttle, _ := dispatch.New(dispatch.Config{Campaign: campaign, Queue: queue, Dispatcher: transport, Locker: locker})
	worker, _ := issuer.New(issuer.Config{Consumer: transport, Store: store, Catalog: catalog, Recorder: queue, Locker: locker})

	for _, user := range []string{"ann", "bo", "cy"} {
		t, _ := svc.Admit(ctx, couponq.Request{Campaign: campaign.ID, User: user})
		fmt.Printf("%s: entry %d, position %d\n", user, t.Entry, t.Position)
	}

	_ = throttle.Start(ctx)
	_ = worker.Start(ctx)
	defer throttle.Stop(ctx)
	defer worker.Stop(ctx)
	for _, user := range []string{"ann", "bo", "cy"} {
		st := waitFinal(ctx, svc, campaign.ID, user)
		if st.State == couponq.StateRejected {
			fmt.Printf("%s: %s (%s)\n", user, st.State, st.Reason)
		} else {
			fmt.Printf("%s: %s\n", user, st.State)
		}
	}
	// Output:
	// ann: entry 1, position 1
	// bo: entry 2, position 2
	// cy: entry 3, position 3
	// ann: issued
	// bo: issued
	// cy: rejected (sold_out)
}

func waitFinal(ctx context.Context, svc *admission.Service, campaign, user string) couponq.Status {
	for {
		st, err := svc.Status(ctx, campaign, user)
		if err == nil && st.State.Terminal() {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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
