package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/pgstore"
	"github.com/couponq/couponq/node"
)

// The Store is something a node can ping.
var _ interface{ Ping(context.Context) error } = (*pgstore.Store)(nil)

// A node whose Store is pgstore is ready only while PostgreSQL answers: its
// readiness turns 503, naming the store, when the server stops, and 200
// again once it is back. The server is one of the test's own, on a port of
// its own, so stopping it does not touch the server the other tests share.
func TestReadinessFollowsPostgres(t *testing.T) {
	pg := dedicatedPostgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pgstore.Migrate(ctx, pool))
	store, err := pgstore.New(pgstore.Config{Pool: pool})
	require.NoError(t, err)
	require.NoError(t, store.Ping(ctx))

	n, err := node.New(node.Config{Store: store})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()
	srv := httptest.NewServer(n.Readiness())
	defer srv.Close()

	probe := func() (int, map[string]string) {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Checks
	}
	ready := func() bool { code, _ := probe(); return code == http.StatusOK }

	require.Eventually(t, ready, 10*time.Second, 20*time.Millisecond, "ready while PostgreSQL answers")

	pg.run(t, "halt")
	var checks map[string]string
	require.Eventually(t, func() bool {
		var code int
		code, checks = probe()
		return code == http.StatusServiceUnavailable
	}, 10*time.Second, 20*time.Millisecond, "not ready once PostgreSQL stopped")
	assert.Contains(t, checks, "store", "the failing check is named: %v", checks)
	assert.Error(t, store.Ping(ctx))

	pg.run(t, "resume")
	require.Eventually(t, ready, 10*time.Second, 20*time.Millisecond, "ready again once PostgreSQL is back")
	require.NoError(t, store.Ping(ctx))

	// And the Store serves again on the pool it had.
	c := campaign("readiness")
	got, err := store.Issue(ctx, req(c, "u", 1, 1, 1))
	require.NoError(t, err)
	assert.Equal(t, couponq.Issued, got.Outcome)
}

// pgServer is a PostgreSQL server of one test, run by scripts/postgres.sh
// in a state directory of its own.
type pgServer struct {
	script, state string
	dsn           string
}

// dedicatedPostgres starts a server for this test alone and removes it when
// the test ends. Without PostgreSQL's binaries it skips, except under CI,
// where the script installs them (or the test fails).
func dedicatedPostgres(t *testing.T) *pgServer {
	t.Helper()
	if os.Getenv("CI") == "" && !havePostgres() {
		t.Skip("PostgreSQL's binaries (initdb, pg_ctl) are not installed; scripts/postgres.sh installs them")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "postgres.sh"))
	require.NoError(t, err)
	// Under root the server runs as the postgres user, which must be able
	// to enter the directory: MkdirTemp makes it 0700.
	state, err := os.MkdirTemp("", "couponq-pgstore-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(state, 0o755))
	pg := &pgServer{script: script, state: state}
	t.Cleanup(func() {
		pg.run(t, "stop")
		_ = os.RemoveAll(state)
	})
	pg.run(t, "start")
	port, err := os.ReadFile(filepath.Join(state, "postgres", "port"))
	require.NoError(t, err)
	pg.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%s/couponq?sslmode=disable", strings.TrimSpace(string(port)))
	return pg
}

// run runs the script's command (start, halt, resume, stop) on the server.
func (pg *pgServer) run(t *testing.T, command string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pg.script, command)
	cmd.Env = append(os.Environ(), "COUPONQ_STATE_DIR="+pg.state)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "scripts/postgres.sh %s:\n%s", command, out)
}

// havePostgres reports whether initdb and pg_ctl are installed where
// scripts/postgres.sh looks for them.
func havePostgres() bool {
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(dirs) > 0 {
		return true
	}
	_, errInit := exec.LookPath("initdb")
	_, errCtl := exec.LookPath("pg_ctl")
	return errInit == nil && errCtl == nil
}
