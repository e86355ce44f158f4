package prom_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
)

func Example() {
	reg := prometheus.NewRegistry()
	registry, _ := memline.NewRegistry(couponq.Campaign{ID: "spring-sale", Stock: 100})
	queue := memline.NewQueue(nil)
	m, err := prom.New(prom.Config{
		Registerer: reg,
		Lines:      queue,    // line gauges, read at most once per LineCacheTTL
		Registry:   registry, // for these campaigns
	})
	if err != nil {
		panic(err)
	}
	svc, _ := admission.New(admission.Config{Catalog: registry, Queue: queue, OnAdmit: m.OnAdmit})
	// Also: scheduler.Config{OnTick: m.OnTick} and
	// issuing.Config{OnIssue: m.OnIssue, OnStoreCall: m.OnStoreCall, OnOverIssue: m.OnOverIssue}.
	for _, user := range []string{"ann", "bob", "ann"} {
		_, _ = svc.Admit(context.Background(), couponq.Request{Campaign: "spring-sale", User: user})
	}

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) // mount at /metrics
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "couponq_admissions_total") || strings.HasPrefix(line, "couponq_line_waiting{") {
			fmt.Println(line)
		}
	}
	// Output:
	// couponq_admissions_total{campaign="spring-sale",outcome="accepted"} 2
	// couponq_admissions_total{campaign="spring-sale",outcome="repeat"} 1
	// couponq_line_waiting{campaign="spring-sale"} 2
}
