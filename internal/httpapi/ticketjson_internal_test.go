package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// The admission answer's hand-written JSON is byte for byte encoding/json's.
func TestTicketJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "spring-sale", "a+b@c.d:e_f", `quote"back\slash`, "<tag>&amp;", "tab\tnew\nline", "ünïcødé", "\x7f\x00", "/api/campaigns/x/entries/me"}
	ints := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64}
	n := 0
	for _, s := range strs {
		for _, i := range ints {
			for _, flag := range []bool{false, true} {
				tr := TicketResponse{Campaign: s, Entry: i, Position: -i, EstimatedWaitMS: i / 3, State: s, Repeat: flag, BeyondStock: !flag, PreQueue: flag, StatusURL: s + "/x"}
				var want bytes.Buffer
				if err := json.NewEncoder(&want).Encode(&tr); err != nil {
					t.Fatal(err)
				}
				if got := tr.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("appendJSON(%+v)\n got %s\nwant %s", tr, got, want.Bytes())
				}
				n++
			}
		}
	}
	t.Logf("%d tickets compared", n)
}
