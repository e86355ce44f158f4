package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/couponq/couponq/couponq/metrics/prom"
)

// promProbe is the Prometheus adapter as a host runs it: a registry fed by
// the node it is the Observer of, served by promhttp on a listener of its own,
// and read by scraping that listener over HTTP, as Prometheus would. The
// bench compares the admission rate the scrapes show with the rate wrk
// measured on the same run.
type promProbe struct {
	metrics *prom.Metrics
	srv     *http.Server
	url     string
}

func newPromProbe() (*promProbe, error) {
	reg := prometheus.NewRegistry()
	m, err := prom.New(prom.Config{Registerer: reg})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	p := &promProbe{metrics: m, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, url: "http://" + ln.Addr().String() + "/metrics"}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// admissions scrapes the endpoint and sums couponq_admissions_total over
// every campaign and outcome.
func (p *promProbe) admissions(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", p.url, resp.Status)
	}
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "couponq_admissions_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("scrape line %q: %w", line, err)
		}
		total += v
	}
	return int64(total), sc.Err()
}

// scrapeWindow is what two scrapes saw: the admissions counted between
// them and the seconds between them.
type scrapeWindow struct {
	admissions int64
	seconds    float64
}

// window scrapes at start+d/5 and at start+4d/5.
func (p *promProbe) window(ctx context.Context, start time.Time, d time.Duration) (scrapeWindow, error) {
	var w scrapeWindow
	at := func(t time.Time) (int64, time.Time, error) {
		select {
		case <-time.After(time.Until(t)):
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		}
		n, err := p.admissions(ctx)
		return n, time.Now(), err
	}
	n0, t0, err := at(start.Add(d / 5))
	if err != nil {
		return w, err
	}
	n1, t1, err := at(start.Add(4 * d / 5))
	if err != nil {
		return w, err
	}
	return scrapeWindow{admissions: n1 - n0, seconds: t1.Sub(t0).Seconds()}, nil
}

func (p *promProbe) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}
