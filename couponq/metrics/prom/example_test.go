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
	"github.com/couponq/couponq/node"
)

func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := prom.New(prom.Config{Registerer: reg})
	if err != nil {
		panic(err)
	}
	// One value for every metric: the node calls m's hooks and hands it its
	// lines for the line gauges (read at most once per LineCacheTTL).
	n, err := node.New(node.Config{Observer: m})
	if err != nil {
		panic(err)
	}
	if err := n.Start(ctx); err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	// Paused, so the line keeps its users for the gauges to count.
	if _, err := n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 100, Paused: true}); err != nil {
		panic(err)
	}
	for _, user := range []string{"ann", "bob", "ann"} {
		_, _ = n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: user})
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
