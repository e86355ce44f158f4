package redisline

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/internal/redistest"
)

// One multi-user admission call that names users twice, crosses an order
// bucket (entries 127 and 128) and meets the line's cap answers each user
// as single admissions in that order would: a user's second mention is a
// repeat with the entry and position of the first, new users get the next
// numbers and the positions behind everyone before them, and the cap
// refuses without using a number.
func TestAdmitManyAnswersEachMentionInOrder(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		k := KeysFor(redistest.Prefix(t, c), "many")
		type ticket struct{ code, entry, position int64 }
		admit := func(lineCap int, users ...string) []ticket {
			t.Helper()
			args := []any{1, time.Now().UnixMilli(), lineCap}
			for _, u := range users {
				args = append(args, u, "")
			}
			res, err := admitManyScript.Run(ctx, c, k.AdmitKeys(), args...).Slice()
			require.NoError(t, err)
			require.Len(t, res, 7*len(users))
			out := make([]ticket, len(users))
			for i := range users {
				out[i] = ticket{toInt(res[7*i]), toInt(res[7*i+1]), toInt(res[7*i+2])}
			}
			return out
		}
		var users []string
		for i := 1; i <= 125; i++ {
			users = append(users, fmt.Sprintf("u%03d", i))
		}
		got := admit(0, users...)
		for i, tk := range got {
			require.Equal(t, ticket{0, int64(i + 1), int64(i + 1)}, tk)
		}
		got = admit(130, "a", "b", "u007", "a", "c", "d", "b", "e", "f", "c")
		assert.Equal(t, []ticket{
			{0, 126, 126}, {0, 127, 127}, {1, 7, 7}, {1, 126, 126}, // a twice
			{0, 128, 128}, {0, 129, 129}, {1, 127, 127}, // c opens order bucket 1; b again
			{0, 130, 130}, {3, 0, 130}, {1, 128, 128}, // e fills the line to its cap; f is refused
		}, got)
		st, err := c.Get(ctx, k.Line).Int64()
		require.NoError(t, err)
		assert.EqualValues(t, 130, st, "the line's count")
		seq, err := c.Get(ctx, k.Seq).Int64()
		require.NoError(t, err)
		assert.EqualValues(t, 130, seq, "a refusal uses no number")
	})
}

// Each script is the line's layout (line.lua, and line_write.lua and
// line_more.lua where it needs them) then its own code. A function of the
// layout called but not defined before the call would compile as a global
// and fail only when that path runs: every call has its definition first.
func TestScriptsDefineWhatTheyCall(t *testing.T) {
	def := regexp.MustCompile(`(?m)^local function ((?:line|out)_\w+)\(`)
	call := regexp.MustCompile(`\b((?:line|out)_\w+)\(`)
	for name, src := range map[string]string{
		"admit": AdmitScript(), "admit_many": lineLua + lineWriteLua + admitManyLua,
		"lease": lineLua + lineWriteLua + lineMoreLua + leaseLua, "ack": lineLua + lineWriteLua + lineMoreLua + ackLua,
		"release": lineLua + lineWriteLua + lineMoreLua + releaseLua, "record": lineLua + lineWriteLua + lineMoreLua + recordLua,
		"status": lineLua + statusLua, "stats": lineLua + lineWriteLua + lineMoreLua + statsLua,
		"seat": lineLua + lineWriteLua + seatLua,
	} {
		defined := map[string]int{}
		for _, m := range def.FindAllStringSubmatchIndex(src, -1) {
			defined[src[m[2]:m[3]]] = m[0]
		}
		for _, m := range call.FindAllStringSubmatchIndex(src, -1) {
			fn := src[m[2]:m[3]]
			at, ok := defined[fn]
			assert.True(t, ok && at <= m[0], "%s calls %s before defining it", name, fn)
		}
	}
}
