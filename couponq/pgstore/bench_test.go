package pgstore_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"

	"github.com/couponq/couponq/couponq"
)

// The benchmarks issue to new users of one campaign with stock to spare, so
// every request takes the full path: a read, a grant on the campaign's
// counter row and an insert, committed (with the server's fsync settings).
//
//	scripts/postgres.sh start && . .cache/servers/postgres/env
//	cd couponq/pgstore && go test -run x -bench . -benchtime 3s

const benchBatch = 100

func BenchmarkIssue(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	c := campaign("bench-issue")
	n := int64(0)
	for b.Loop() {
		n++
		iss, err := s.Issue(ctx, req(c, fmt.Sprintf("u%d", n), n, math.MaxInt64, 1))
		if err != nil || iss.Outcome != couponq.Issued {
			b.Fatalf("%+v, %v", iss, err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "issues/s")
}

func BenchmarkIssueBatch(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	c := campaign("bench-batch")
	n := int64(0)
	rs := make([]couponq.IssueRequest, benchBatch)
	for b.Loop() {
		for i := range rs {
			n++
			rs[i] = req(c, fmt.Sprintf("u%d", n), n, math.MaxInt64, 1)
		}
		got, err := s.IssueBatch(ctx, rs)
		if err != nil || got[len(got)-1].Outcome != couponq.Issued {
			b.Fatalf("%v", err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "issues/s")
}

// BenchmarkIssueParallel has 8 callers per CPU issue in one campaign: they
// queue on the campaign's counter row.
func BenchmarkIssueParallel(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	c := campaign("bench-issue-par")
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			iss, err := s.Issue(ctx, req(c, fmt.Sprintf("u%d", i), i, math.MaxInt64, 1))
			if err != nil || iss.Outcome != couponq.Issued {
				b.Errorf("%+v, %v", iss, err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "issues/s")
}

// BenchmarkIssueBatchParallel is BenchmarkIssueBatch with 8 callers per CPU
// sending batches for one campaign.
func BenchmarkIssueBatchParallel(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	c := campaign("bench-batch-par")
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		rs := make([]couponq.IssueRequest, benchBatch)
		for pb.Next() {
			for i := range rs {
				k := n.Add(1)
				rs[i] = req(c, fmt.Sprintf("u%d", k), k, math.MaxInt64, 1)
			}
			got, err := s.IssueBatch(ctx, rs)
			if err != nil || got[len(got)-1].Outcome != couponq.Issued {
				b.Errorf("%v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "issues/s")
}

// BenchmarkRedelivery answers keys that were already issued: a read only,
// no lock.
func BenchmarkRedelivery(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	c := campaign("bench-redeliver")
	r := req(c, "u", 1, math.MaxInt64, 1)
	first, err := s.Issue(ctx, r)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		iss, err := s.Issue(ctx, r)
		if err != nil || iss.ID != first.ID {
			b.Fatalf("%+v, %v", iss, err)
		}
	}
}
