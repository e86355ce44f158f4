package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/node"
)

// A whole V2 service on the in-memory backends: admission, the scheduler
// and the issuer in one node.
func Example() {
	ctx := context.Background()
	campaigns, _ := memline.NewRegistry(couponq.Campaign{ID: "spring-sale", Stock: 2, Interval: 10 * time.Millisecond})
	n, _ := node.New(node.Config{Catalog: campaigns}) // no backends given: in-memory ones
	_ = n.Start(ctx)
	defer n.Stop(ctx)

	for _, user := range []string{"ann", "bo", "cy"} {
		t, _ := n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: user})
		fmt.Printf("%s: entry %d, position %d, beyond stock %v\n", user, t.Entry, t.Position, t.BeyondStock)
	}
	for _, user := range []string{"ann", "bo", "cy"} {
		st, _ := n.Status(ctx, "spring-sale", user)
		for !st.State.Terminal() {
			time.Sleep(5 * time.Millisecond)
			st, _ = n.Status(ctx, "spring-sale", user)
		}
		if st.Reason != "" {
			fmt.Println(user+":", st.State, st.Reason)
		} else {
			fmt.Println(user+":", st.State)
		}
	}
	// Output:
	// ann: entry 1, position 1, beyond stock false
	// bo: entry 2, position 2, beyond stock false
	// cy: entry 3, position 3, beyond stock true
	// ann: issued
	// bo: issued
	// cy: rejected sold_out
}
