// Command quickstart runs the whole V2 pipeline in one process with the
// in-memory backends: 10,000 simulated users (some retrying) line up for a
// stock of 1,000, the scheduler drains the line fast, the issuer decides
// each entry through the Store, and every admitted user polls until their
// entry is final. It ends with a summary line. -v1 runs the same crowd
// through V1 (validate-first) admission.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/node"
)

func main() {
	users := flag.Int("users", 10_000, "distinct simulated users")
	stock := flag.Int64("stock", 1_000, "coupons in stock")
	retry := flag.Float64("retry", 0.2, "share of users who send their request twice")
	arrival := flag.Duration("arrival", 200*time.Millisecond, "users arrive spread evenly over this long")
	v1 := flag.Bool("v1", false, "use V1 validate-first admission instead of V2 queue-first")
	verbose := flag.Bool("v", false, "log the pipeline's events")
	flag.Parse()
	if err := run(*users, *stock, *retry, *arrival, *v1, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(users int, stock int64, retryShare float64, arrival time.Duration, v1, verbose bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var logger *slog.Logger
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	campaign := couponq.Campaign{ID: "launch-day", Stock: stock, BatchSize: 200, Interval: 5 * time.Millisecond}
	if v1 {
		campaign.Mode = couponq.ValidateFirst
	}
	// One node runs admission, the scheduler and the issuer on the
	// in-memory backends. The Store is given only so the summary can read
	// who holds what; PollInterval has the scheduler look for woken
	// campaigns every 5ms instead of every second, since the whole crowd
	// arrives within 200ms.
	store := memory.NewStore()
	n, err := node.New(node.Config{Store: store, Logger: logger, PollInterval: 5 * time.Millisecond})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = n.Stop(stopCtx)
	}()
	if _, err := n.CreateCampaign(ctx, campaign); err != nil {
		return err
	}

	start := time.Now()
	var admitted, soldOut, repeats, failed atomic.Int64
	accepted := make([]bool, users) // users who hold a ticket
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // concurrent clients
	for u := range users {
		time.Sleep(time.Until(start.Add(arrival * time.Duration(u) / time.Duration(users))))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req := couponq.Request{Campaign: campaign.ID, User: fmt.Sprintf("user-%05d", u)}
			tries := 1
			if rand.Float64() < retryShare {
				tries = 2 // an impatient user presses the button again
			}
			for range tries {
				t, err := n.Admit(ctx, req)
				switch {
				case err == nil && t.Repeat:
					repeats.Add(1)
				case err == nil:
					admitted.Add(1)
					accepted[u] = true
				case errors.Is(err, couponq.ErrDuplicate):
					repeats.Add(1)
				case errors.Is(err, couponq.ErrSoldOut):
					soldOut.Add(1)
				default:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	admitTime := time.Since(start)

	// Every admitted user polls until their entry is final.
	var issued, rejected, lost int64
	for u, ok := range accepted {
		if !ok {
			continue
		}
		st, err := waitFinal(ctx, n, campaign.ID, fmt.Sprintf("user-%05d", u))
		switch {
		case err != nil:
			lost++
		case st.State == couponq.StateIssued:
			issued++
		default:
			rejected++
		}
	}
	duplicates := 0
	for _, held := range store.Holders(campaign.ID) {
		if held > 1 {
			duplicates += held - 1
		}
	}
	fmt.Printf("mode=%s users=%d admitted=%d sold_out_answers=%d repeat_answers=%d admit_errors=%d admit_time=%s total_time=%s\n",
		campaign.Mode, users, admitted.Load(), soldOut.Load(), repeats.Load(), failed.Load(),
		admitTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	stored, err := store.IssuedCount(ctx, campaign.ID)
	if err != nil {
		return err
	}
	fmt.Printf("issued=%d stock=%d duplicates=%d lost=%d rejected=%d store_issued=%d\n",
		issued, stock, duplicates, lost, rejected, stored)
	if stored != issued || issued > stock || duplicates != 0 || lost != 0 {
		return errors.New("invariant broken")
	}
	return nil
}

func waitFinal(ctx context.Context, n *node.Node, campaign, user string) (couponq.Status, error) {
	for {
		st, err := n.Status(ctx, campaign, user)
		if err == nil && st.State.Terminal() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
