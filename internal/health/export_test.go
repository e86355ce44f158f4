package health

import "time"

// Waiting is how many requests wait on the run in progress.
func (h *Handler) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}

// SetNow replaces the handler's clock.
func (h *Handler) SetNow(now func() time.Time) { h.now = now }
