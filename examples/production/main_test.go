package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/internal/testenv"
)

// The production wiring, run briefly on the project's servers (the Redis
// Cluster, Kafka, Postgres): ready, a campaign created through the admin
// routes, a user admitted through the public ones and issued a unit, then a
// graceful stop.
func TestProductionWiring(t *testing.T) {
	o := options{
		addr: "127.0.0.1:0", opsAddr: "127.0.0.1:0",
		redis:    testenv.Need(t, "COUPONQ_REDIS_CLUSTER", "scripts/redis.sh"),
		kafka:    testenv.Need(t, "COUPONQ_KAFKA_BROKERS", "scripts/kafka.sh"),
		postgres: testenv.Need(t, "COUPONQ_POSTGRES_DSN", "scripts/postgres.sh"),
		token:    "a-token-of-sixteen-chars", roles: "all",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.DiscardHandler), o, func(addr, ops string) { addrs <- [2]string{addr, ops} })
	}()
	var api, ops string
	select {
	case a := <-addrs:
		api, ops = "http://"+a[0], "http://"+a[1]
	case err := <-done:
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not listening after 60 s")
	}

	do := func(method, url, body string, header ...string) (int, string) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := do("GET", ops+"/readyz", ""); return code == 200 },
		60*time.Second, 100*time.Millisecond, "readiness: Redis, Postgres and Kafka")

	id := fmt.Sprintf("prod-%d", time.Now().UnixNano())
	auth := []string{"Authorization", "Bearer " + o.token, "Content-Type", "application/json"}
	code, body := do("POST", api+"/admin/campaigns", `{"id":"`+id+`","stock":1,"interval_ms":100}`, auth...)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = do("POST", api+"/admin/campaigns", `{"id":"`+id+`-v1","stock":1,"mode":"v1-validate-first"}`, auth...)
	require.Equal(t, http.StatusCreated, code, "V1 is served: the Redis Backend has a Tally and the api a Transport: %s", body)
	code, body = do("POST", api+"/api/campaigns/"+id+"/entries", "", "X-User", "ann")
	require.Equal(t, http.StatusAccepted, code, body)
	var st struct{ State string }
	require.Eventually(t, func() bool {
		_, body := do("GET", api+"/api/campaigns/"+id+"/entries/me", "", "X-User", "ann")
		return json.Unmarshal([]byte(body), &st) == nil && st.State == "issued"
	}, 60*time.Second, 100*time.Millisecond, "ann issued through Redis, Kafka and Postgres")
	code, body = do("GET", ops+"/metrics", "")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `couponq_admissions_total{campaign="`+id+`",outcome="accepted"} 1`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful stop")
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop within 30 s")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAdminToken(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Setenv("COUPONQ_ADMIN_TOKEN", "from-the-environment")
	tok, err := adminToken(log, "", "")
	require.NoError(t, err)
	assert.Equal(t, "from-the-environment", tok)

	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("from-the-file-0123\n"), 0o600))
	tok, err = adminToken(log, "", file)
	require.NoError(t, err)
	assert.Equal(t, "from-the-file-0123", tok)

	tok, err = adminToken(log, "from-the-flag", "")
	require.NoError(t, err)
	assert.Equal(t, "from-the-flag", tok, "deprecated, still honored")

	_, err = adminToken(log, "from-the-flag", file)
	assert.Error(t, err, "not both")
	_, err = adminToken(log, "", file+".missing")
	assert.Error(t, err)
}
