package redisstore_test

import (
	"testing"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/storetest"
	"github.com/couponq/couponq/internal/redisstore"
	"github.com/couponq/couponq/internal/redistest"
)

func TestConformance(t *testing.T) {
	c := redistest.Client(t)
	storetest.Run(t, func(t *testing.T) couponq.Store { return redisstore.New(c, redistest.Prefix(t, c)) })
}
