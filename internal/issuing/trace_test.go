package issuing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
)

// recordingTracer is a couponq.Tracer whose carrier is the span's ID, so a
// test can follow each entry's chain of parents.
type recordingTracer struct {
	mu    sync.Mutex
	spans map[string]*recordedSpan // by ID
	n     int
}

type recordedSpan struct {
	t                 *recordingTracer
	id, stage, parent string
	user              string
	ended             bool
	err               error
}

type rootKey struct{}

func (r *recordingTracer) Start(ctx context.Context, stage string, e couponq.Entry) (context.Context, couponq.Span) {
	parent := e.Trace
	if parent == "" {
		parent, _ = ctx.Value(rootKey{}).(string)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	s := &recordedSpan{t: r, id: fmt.Sprintf("s%d", r.n), stage: stage, parent: parent, user: e.User}
	r.spans[s.id] = s
	return ctx, s
}

func (s *recordedSpan) Carrier() string { return s.id }

func (s *recordedSpan) End(err error) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.ended, s.err = true, err
}

// chain returns the stages from the issue span of user up to the root.
func (r *recordingTracer) chain(user string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var id string
	for _, s := range r.spans {
		if s.user == user && s.stage == couponq.StageIssue && s.err == nil && s.ended {
			id = s.id
		}
	}
	var out []string
	for id != "" {
		s, ok := r.spans[id]
		if !ok {
			out = append(out, id) // the root, from the request's context
			break
		}
		out = append(out, s.stage)
		id = s.parent
	}
	return out
}

// Each admitted user's stages form one chain: the issue span's parent is the
// consume span, whose parent is the dispatch span, whose parent is the
// admission span, whose parent is the request's span. On both issuer paths.
func TestTraceFollowsTheEntry(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tr := &recordingTracer{spans: map[string]*recordedSpan{}}
			c := couponq.Campaign{ID: "traced", Stock: 5, BatchSize: 10, Interval: 5 * time.Millisecond}
			catalog, err := memline.NewRegistry(c)
			require.NoError(t, err)
			q := memline.NewQueue(nil)
			transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
			require.NoError(t, err)
			svc, err := admission.New(admission.Config{Catalog: catalog, Queue: q, Tracer: tr})
			require.NoError(t, err)
			// Without the cutoff, the Store itself answers the entries past
			// the stock, and their issue spans carry the sold-out outcome.
			sched, err := scheduler.New(scheduler.Config{Catalog: catalog, Agenda: q, Queue: q,
				Dispatcher: transport, Locker: lock.NewMemory(), PollInterval: 5 * time.Millisecond, Tracer: tr, NoCutoff: true})
			require.NoError(t, err)
			cfg := issuing.Config{Consumer: transport, Store: memory.NewStore(), Catalog: catalog, Recorder: q, Tracer: tr, MaxBatch: 1}
			if batch {
				cfg.MaxBatch = 0
			}
			iss, err := issuing.New(cfg)
			require.NoError(t, err)
			require.Equal(t, batch, iss.Batching())
			// Everyone is in line before the scheduler starts, so one batch
			// takes all seven and the last two hear sold out from the Store.
			users := []string{"ann", "bob", "cy", "dee", "eve", "fay", "gus"}
			for _, u := range users {
				_, err := svc.Admit(context.WithValue(ctx, rootKey{}, "request-"+u), couponq.Request{Campaign: c.ID, User: u})
				require.NoError(t, err)
			}
			require.NoError(t, iss.Start(ctx))
			require.NoError(t, sched.Start(ctx))
			defer func() {
				require.NoError(t, sched.Stop(context.Background()))
				require.NoError(t, iss.Stop(context.Background()))
			}()
			for _, u := range users {
				require.Eventually(t, func() bool {
					st, err := svc.Status(ctx, c.ID, u)
					return err == nil && st.State.Terminal()
				}, 10*time.Second, time.Millisecond)
			}
			issued := 0
			for _, u := range users {
				st, err := svc.Status(ctx, c.ID, u)
				require.NoError(t, err)
				if st.State != couponq.StateIssued {
					continue
				}
				issued++
				assert.Equal(t, []string{couponq.StageIssue, couponq.StageConsume, couponq.StageDispatch, couponq.StageAdmit, "request-" + u},
					tr.chain(u), "user %s", u)
			}
			assert.Equal(t, 5, issued)

			tr.mu.Lock()
			defer tr.mu.Unlock()
			soldOut := 0
			for _, s := range tr.spans {
				assert.True(t, s.ended, "%s span of %s ended", s.stage, s.user)
				if s.stage == couponq.StageIssue && s.err != nil {
					assert.ErrorIs(t, s.err, couponq.ErrSoldOut, "a business outcome, for the Tracer to label")
					soldOut++
				}
			}
			assert.Equal(t, 2, soldOut, "two users past the stock heard sold out from the Store")
		})
	}
}
