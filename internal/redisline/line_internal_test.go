package redisline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redistest"
)

// One multi-user admission call that names users twice, crosses an order
// bucket (entries 127 and 128 are in buckets 3 and 4) and meets the line's cap answers each user
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
				args = append(args, u, "", "")
			}
			res, err := admitManyScript.Run(ctx, c, k.AdmitKeys(), args...).Slice()
			require.NoError(t, err)
			calls := make([]*admitCall, len(users))
			for i, u := range users {
				calls[i] = &admitCall{a: couponq.Admission{Campaign: "many", User: u}}
			}
			require.NoError(t, manyTickets(calls, res))
			out := make([]ticket, len(users))
			for i, call := range calls {
				switch {
				case errors.Is(call.err, couponq.ErrLineFull):
					require.ErrorContains(t, call.err, fmt.Sprintf("holds %d waiting", lineCap))
					out[i] = ticket{3, 0, int64(lineCap)}
				case call.err != nil:
					require.NoError(t, call.err)
				case call.t.Repeat:
					out[i] = ticket{1, call.t.Entry, call.t.Position}
				default:
					out[i] = ticket{0, call.t.Entry, call.t.Position}
				}
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
			{0, 128, 128}, {0, 129, 129}, {1, 127, 127}, // c opens order bucket 4; b again
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

// userBucket is line.lua's line_ukey, computed in Go: for any user the two
// name the same index bucket (a mismatch would index a user where no other
// script looks). UBUCKETS in line.lua is userBuckets.
func TestUserBucketMatchesLua(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	require.Contains(t, lineLua, "local UBUCKETS = "+strconv.Itoa(userBuckets)+" ")
	require.Contains(t, lineLua, "local BUCKET = "+strconv.Itoa(orderBucketWidth)+" ")
	probe := redis.NewScript(lineLua + `
local out = {}
for i = 1, #ARGV do
  local k = line_ukey({base = ''}, ARGV[i])
  out[i] = tonumber(string.sub(k, 3))
end
return out`)
	users := []string{"u", "user:1", "ann", "a.b:c_d-e@f+g", strings.Repeat("x", 128), "\x00\xff", "mallory"}
	for i := range 500 {
		users = append(users, "user:"+strconv.Itoa(i*7919))
	}
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	res, err := probe.Run(ctx, c, nil, args...).Int64Slice()
	require.NoError(t, err)
	for i, u := range users {
		require.EqualValues(t, res[i], userBucket(u), "user %q", u)
	}
}

// TestAdmitManyScriptCPU is a lab (it skips unless
// COUPONQ_ADMIT_SCRIPT_CPU is set): Redis's CPU per admission in
// admit_many.lua's batches of 128 new users, with the user's index bucket
// hashed in Lua and passed from Go, interleaved.
func TestAdmitManyScriptCPU(t *testing.T) {
	if os.Getenv("COUPONQ_ADMIT_SCRIPT_CPU") == "" {
		t.Skip("set COUPONQ_ADMIT_SCRIPT_CPU to measure")
	}
	c := redistest.Client(t)
	ctx := context.Background()
	cpu := func() float64 {
		s, _ := redisCPU(t, c)
		return s
	}
	const batches, per = 400, 128
	spent := map[bool]float64{}
	for round := range 4 {
		for _, fromGo := range []bool{false, true} {
			k := KeysFor(redistest.Prefix(t, c), fmt.Sprintf("lab-%d-%t", round, fromGo))
			c0 := cpu()
			for b := range batches {
				args := []any{1, time.Now().UnixMilli(), 0}
				for i := range per {
					u := "user:" + strconv.Itoa(b*per+i)
					bucket := any("")
					if fromGo {
						bucket = userBucket(u)
					}
					args = append(args, u, "", bucket)
				}
				require.NoError(t, admitManyScript.Run(ctx, c, k.AdmitKeys(), args...).Err())
			}
			spent[fromGo] += cpu() - c0
		}
	}
	n := float64(4 * batches * per)
	t.Logf("admit_many.lua, Redis CPU per admission: bucket hashed in Lua %.2f µs, passed from Go %.2f µs",
		spent[false]*1e6/n, spent[true]*1e6/n)
}
