package memline_test

import (
	"testing"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/queuetest"
	"github.com/couponq/couponq/internal/memline"
)

func TestQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) couponq.Queue { return memline.NewQueue(nil) })
}
