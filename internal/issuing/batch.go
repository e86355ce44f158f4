package issuing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/issuer"
)

// HandleBatch decides a delivered batch: one couponq.BatchStore.IssueBatch
// call for all its entries, then one Record call per campaign. It returns
// nil once every entry's outcome is recorded (or the entry is dead-lettered
// and recorded as failed), and an error when the whole batch should be
// delivered again; entries decided before such an error get the same
// outcome from the Store on redelivery. If the batch call keeps failing
// (MaxAttempts times), each entry is decided alone, so one request the
// Store refuses cannot hold its neighbours back. It is the
// couponq.BatchHandler Run gives a couponq.BatchConsumer; the Store must be
// a couponq.BatchStore, otherwise each entry goes through Handle.
func (i *Issuer) HandleBatch(ctx context.Context, batch []couponq.Entry) (err error) {
	start := time.Now()
	bs, ok := i.cfg.Store.(couponq.BatchStore)
	if i.cfg.Tracer != nil && ok && i.cfg.Locker == nil {
		batch = slices.Clone(batch) // the spans' traces go into our copy, not the consumer's slice
		spans := make([]couponq.Span, len(batch))
		for k := range batch {
			spans[k] = i.startSpan(ctx, couponq.StageConsume, &batch[k])
		}
		defer func() {
			for _, span := range spans {
				span.End(err)
			}
		}()
	}
	if !ok || i.cfg.Locker != nil {
		for _, e := range batch {
			if err := i.Handle(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}

	campaigns := map[string]couponq.Campaign{}
	entries := make([]couponq.Entry, 0, len(batch))
	reqs := make([]couponq.IssueRequest, 0, len(batch))
	for _, e := range batch {
		if err := (couponq.Request{Campaign: e.Campaign, User: e.User, RequestID: e.RequestID}).Validate(); err != nil {
			if err := i.deadLetter(ctx, e, fmt.Errorf("%w: %w", errPermanent, err)); err != nil {
				return err
			}
			continue
		}
		c, ok := campaigns[e.Campaign]
		if !ok {
			var err error
			c, err = i.cfg.Catalog.Campaign(ctx, e.Campaign)
			if errors.Is(err, couponq.ErrUnknownCampaign) {
				if err := i.deadLetter(ctx, e, fmt.Errorf("%w: %w", errPermanent, err)); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("issuer: catalog: %w", err)
			}
			c = c.WithDefaults()
			campaigns[e.Campaign] = c
		}
		entries = append(entries, e)
		reqs = append(reqs, issueRequest(c, e))
	}
	if len(reqs) == 0 {
		return nil
	}

	var spans []couponq.Span
	if i.cfg.Tracer != nil {
		spans = make([]couponq.Span, len(entries))
		for k, e := range entries {
			spans[k] = i.startSpan(ctx, couponq.StageIssue, &e)
		}
	}
	var out []couponq.Issuance
	attempts, err := i.retry(ctx, i.cfg.MaxAttempts, func() error {
		err := i.timeStore(len(reqs), func() error {
			var err error
			out, err = bs.IssueBatch(ctx, reqs)
			return err
		})
		if err == nil && len(out) != len(reqs) {
			err = fmt.Errorf("%w: store answered %d outcomes for %d requests", errPermanent, len(out), len(reqs))
		}
		return err
	})
	for k, span := range spans {
		if err != nil {
			span.End(err)
		} else {
			span.End(issueErr(out[k], nil))
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return err // stopping: leave the batch for redelivery
		}
		i.log.Warn("couponq: issuer batch failed; deciding its entries one by one", "entries", len(reqs), "attempts", attempts, "err", err)
		for _, e := range entries {
			if err := i.decide(ctx, campaigns[e.Campaign], e, start); err != nil {
				return err
			}
		}
		return nil
	}

	// Group the results by campaign, keeping delivery order.
	type group struct {
		results []couponq.Result
		soldOut bool
		issued  bool
	}
	groups := map[string]*group{}
	var order []string
	var unknown []int
	for k, iss := range out {
		e := entries[k]
		res, ok := result(e, iss)
		if !ok {
			unknown = append(unknown, k)
			continue
		}
		g := groups[e.Campaign]
		if g == nil {
			g = &group{}
			groups[e.Campaign] = g
			order = append(order, e.Campaign)
		}
		g.results = append(g.results, res)
		g.soldOut = g.soldOut || iss.SoldOut || iss.Outcome == couponq.SoldOut
		g.issued = g.issued || res.State == couponq.StateIssued
	}
	for _, c := range order {
		g := groups[c]
		if err := i.recordAll(ctx, c, g.results, g.soldOut); err != nil {
			return fmt.Errorf("issuer: record outcomes of %d entries of %s: %w", len(g.results), c, err)
		}
		if g.issued {
			i.checkOverIssue(ctx, campaigns[c])
		}
	}
	for _, k := range unknown {
		if err := i.deadLetter(ctx, entries[k], fmt.Errorf("%w: store answered unknown outcome %d", errPermanent, out[k].Outcome)); err != nil {
			return err
		}
	}
	if i.cfg.OnIssue != nil {
		d := time.Since(start)
		for _, c := range order {
			for _, res := range groups[c].results {
				i.cfg.OnIssue(issuer.Event{Entry: res.Entry, Result: res, Attempts: attempts, Duration: d})
			}
		}
	}
	return nil
}
