package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/node"
)

// A whole V2 service in one process: with no Backend, Transport or Store
// given, the node runs on the in-memory ones.
func Example() {
	ctx := context.Background()
	n, err := node.New(node.Config{})
	if err != nil {
		panic(err)
	}
	if err := n.Start(ctx); err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	if _, err := n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 2, Interval: 10 * time.Millisecond}); err != nil {
		panic(err)
	}

	users := []string{"ann", "bo", "cy"}
	for _, user := range users {
		t, err := n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: user})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: entry %d, position %d, beyond stock %v\n", user, t.Entry, t.Position, t.BeyondStock)
	}
	for _, user := range users {
		st, err := n.Status(ctx, "spring-sale", user)
		for err == nil && !st.State.Terminal() {
			time.Sleep(5 * time.Millisecond)
			st, err = n.Status(ctx, "spring-sale", user)
		}
		if err != nil {
			panic(err)
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
