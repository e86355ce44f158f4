package scheduler

import (
	"context"

	"github.com/couponq/couponq/couponq"
)

// wakeWatcher is an Agenda that announces wakes: a signal whenever a
// campaign that was not on the agenda is put on it (redisline and memline
// implement it). The leader then reads the agenda at once, so the first
// users of a sale, or of a line that had drained, wait for their first move
// no longer than for the campaign's own ticks: PollInterval stays the bound
// when an announcement is lost, and the cost of an idle leader stays one
// read a PollInterval.
type wakeWatcher interface {
	// WatchWakes signals on the returned channel until ctx is done, then
	// closes it.
	WatchWakes(ctx context.Context) <-chan struct{}
}

// watchWakes starts watching a's wakes if it announces them; stop ends the
// watch and waits for the watcher to close its channel. For an Agenda that
// does not, the channel is nil (never ready).
func watchWakes(ctx context.Context, a couponq.Agenda) (wakes <-chan struct{}, stop func()) {
	w, ok := a.(wakeWatcher)
	if !ok {
		return nil, func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	ch := w.WatchWakes(wctx)
	return ch, func() {
		cancel()
		for range ch { // until closed: the watcher has let go
		}
	}
}
