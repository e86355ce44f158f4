package prom

import "github.com/prometheus/client_golang/prometheus"

// Accessors for the external tests (testutil.ToFloat64, CollectAndCount).

func (m *Metrics) AdmissionDuration() *prometheus.HistogramVec { return m.admitDuration }

func (m *Metrics) OverIssued() *prometheus.GaugeVec { return m.overIssued }
