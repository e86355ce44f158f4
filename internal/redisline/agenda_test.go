package redisline_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/agendatest"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

func TestAgendaConformance(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		agendatest.Run(t, func(t *testing.T) agendatest.Backends {
			q := newQueue(t, c)
			return agendatest.Backends{Agenda: q, Queue: q}
		})
	})
}

// Sweep reads only its own prefix's keys, however its prefix is spelled.
func TestSweepStaysInItsPrefix(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		base := redistest.Prefix(t, c)
		mine, err := redisline.New(redisline.Config{Client: c, Prefix: base + ":a*[b]"})
		require.NoError(t, err)
		other, err := redisline.New(redisline.Config{Client: c, Prefix: base + ":ab"})
		require.NoError(t, err)
		for _, q := range []*redisline.Queue{mine, other} {
			_, err := q.Admit(ctx, couponq.Admission{Campaign: "c", User: "u"})
			require.NoError(t, err)
		}
		_, err = other.Admit(ctx, couponq.Admission{Campaign: "only-other", User: "u"})
		require.NoError(t, err)
		n, err := mine.Sweep(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		ids, err := mine.Awake(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"c"}, ids)
		ids, err = other.Awake(ctx)
		require.NoError(t, err)
		assert.Empty(t, ids)
		assert.Equal(t, base+":ab:agenda", redisline.AgendaKey(base+":ab"))
	})
}
