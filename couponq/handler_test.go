package couponq_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/couponq/couponq/couponq"
)

func TestHandlerBatch(t *testing.T) {
	var nilHandler couponq.Handler
	assert.Nil(t, nilHandler.Batch(), "a nil Handler adapts to a nil BatchHandler, which consumers refuse")

	var seen []int64
	boom := errors.New("boom")
	h := couponq.Handler(func(_ context.Context, e couponq.Entry) error {
		seen = append(seen, e.Number)
		if e.Number == 2 {
			return boom
		}
		return nil
	})
	err := h.Batch()(context.Background(), []couponq.Entry{{Number: 1}, {Number: 2}, {Number: 3}})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []int64{1, 2}, seen, "entries in order, stopping at the first error")
}
