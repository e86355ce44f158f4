package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// watcher follows the topic with a consumer group of its own (reading the
// JSON itself, not through the library) and, for about one user in
// sampleEvery, polls the user's status from the moment the entry was
// dispatched until it is decided: the samples the checker derives recovery
// times from.
type watcher struct {
	crowd       *crowd
	brokers     string
	topic       string
	sampleEvery uint32

	mu      sync.Mutex
	samples []*check.Sample
	seen    map[string]bool
	wg      sync.WaitGroup
}

func (w *watcher) run(ctx context.Context) error {
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  w.brokers,
		"group.id":           fmt.Sprintf("faultrun-watcher-%d", time.Now().UnixNano()),
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
		// The brokers' kills are on purpose: librdkafka's connection
		// notices about them would bury the run's own log.
		"log_level": 2,
	})
	if err != nil {
		return err
	}
	defer consumer.Close()
	if err := consumer.Subscribe(w.topic, nil); err != nil {
		return err
	}
	w.seen = map[string]bool{}
	for ctx.Err() == nil {
		ev := consumer.Poll(200)
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue
		}
		var msg struct {
			Campaign string `json:"campaign"`
			User     string `json:"user"`
			Entry    int64  `json:"entry"`
		}
		if json.Unmarshal(m.Value, &msg) != nil || msg.User == "" {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(msg.User))
		key := fmt.Sprintf("%s/%s/%d", msg.Campaign, msg.User, msg.Entry)
		if h.Sum32()%w.sampleEvery != 0 || w.seen[key] {
			continue
		}
		w.seen[key] = true
		s := &check.Sample{User: msg.User, Campaign: msg.Campaign, Entry: msg.Entry, DispatchedAt: m.Timestamp}
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
		w.wg.Go(func() { w.follow(ctx, s) })
	}
	w.wg.Wait()
	return nil
}

// follow polls one sampled user until decided: every 100 ms for 3 s, then
// every 500 ms.
func (w *watcher) follow(ctx context.Context, s *check.Sample) {
	start := time.Now()
	api := int(s.Entry) % len(w.crowd.apis)
	for ctx.Err() == nil {
		state, _ := w.crowd.status(ctx, s.User, s.Campaign, api)
		if state == "issued" || len(state) > 9 && state[:9] == "rejected:" {
			w.mu.Lock()
			s.DecidedAt, s.Outcome = time.Now(), state
			w.mu.Unlock()
			return
		}
		if time.Since(start) < 3*time.Second {
			sleep(ctx, 100*time.Millisecond)
		} else {
			sleep(ctx, 500*time.Millisecond)
		}
	}
}

func (w *watcher) result() []check.Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]check.Sample, len(w.samples))
	for i, s := range w.samples {
		out[i] = *s
	}
	return out
}
