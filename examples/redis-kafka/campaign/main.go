// Command campaign manages the example's campaigns through the api's admin
// HTTP handler (/admin/). The token is $COUPONQ_ADMIN_TOKEN, or the
// contents of -token-file (-token still works, deprecated: a command line is
// visible to ps).
//
//	go run ./campaign create -id spring -stock 1000 [-batch 100 -interval 1s -per-user 1 -max-waiting 0 -opens RFC3339 -closes RFC3339 -paused -shards N -v1]
//	go run ./campaign list [ID ...]        # a table with the live numbers
//	go run ./campaign get ID               # one campaign, as JSON
//	go run ./campaign pause ID | resume ID | close ID
//	go run ./campaign set-stock ID N
//	go run ./campaign set ID [-batch B] [-interval D] [-per-user N] [-max-waiting M]
//
// -admin names the admin base URL (default http://127.0.0.1:8080/admin, or
// $COUPONQ_ADMIN_URL); any api of the fleet will do, since they share the
// registry.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/couponq/couponq/examples/internal/admintoken"
	"github.com/couponq/couponq/internal/httpapi"
)

const usage = `usage: campaign [-admin URL] [-token-file FILE] COMMAND ...

commands:
  create -id ID -stock N [-batch B] [-interval D] [-per-user N] [-max-waiting M] [-opens T] [-closes T] [-paused] [-shards N] [-v1]
  list [ID ...]          every campaign (or those named) with its live numbers
  get ID                 one campaign as JSON
  pause ID               stop moving its line (admission goes on)
  resume ID              move it again
  close ID               end admission now (those in line are still served)
  set-stock ID N         change the stock (not below what was issued)
  set ID [-batch B] [-interval D] [-per-user N] [-max-waiting M]
`

func main() {
	admin := flag.String("admin", envOr("COUPONQ_ADMIN_URL", "http://127.0.0.1:8080/admin"), "admin base URL (default $COUPONQ_ADMIN_URL)")
	tokenFile := flag.String("token-file", "", "read the admin bearer token from this file (default $"+admintoken.EnvVar+")")
	token := flag.String("token", "", "DEPRECATED, visible to ps: the admin bearer token itself; use $"+admintoken.EnvVar+" or -token-file")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage, "\nflags:\n"); flag.PrintDefaults() }
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	switch {
	case *tokenFile != "" && *token != "":
		fmt.Fprintln(os.Stderr, "campaign: give the token once: -token-file or (deprecated) -token")
		os.Exit(2)
	case *tokenFile != "":
		t, err := admintoken.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "campaign: -token-file:", err)
			os.Exit(1)
		}
		*token = t
	case *token == "":
		*token = os.Getenv(admintoken.EnvVar)
	}
	c := &client{base: strings.TrimSuffix(*admin, "/"), token: *token, http: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, c, flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "campaign:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (u usageError) Error() string { return string(u) + "\n" + usage }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, c *client, cmd string, args []string) error {
	switch cmd {
	case "create":
		return create(ctx, c, args)
	case "list":
		return list(ctx, c, args)
	case "get":
		id, err := oneID(cmd, args)
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := c.do(ctx, "GET", "/campaigns/"+id, nil, &v); err != nil {
			return err
		}
		var out bytes.Buffer
		_ = json.Indent(&out, v, "", "  ")
		fmt.Println(out.String())
		return nil
	case "pause", "resume", "close":
		id, err := oneID(cmd, args)
		if err != nil {
			return err
		}
		var v httpapi.AdminCampaign
		if err := c.do(ctx, "POST", "/campaigns/"+id+"/"+cmd, nil, &v); err != nil {
			return err
		}
		printOne(v)
		return nil
	case "set-stock":
		if len(args) != 2 {
			return usageError("set-stock wants ID N")
		}
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return usageError("set-stock: N must be an integer")
		}
		return patch(ctx, c, args[0], map[string]any{"stock": n})
	case "set":
		if len(args) < 1 || strings.HasPrefix(args[0], "-") {
			return usageError("set wants ID first")
		}
		fs := flag.NewFlagSet("set", flag.ContinueOnError)
		batch := fs.Int("batch", 0, "entries the scheduler moves per interval")
		interval := fs.Duration("interval", 0, "how often the scheduler moves a batch")
		perUser := fs.Int("per-user", 0, "issuances one user may hold")
		maxWaiting := fs.Int64("max-waiting", -1, "line cap (0: none)")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError(err.Error())
		}
		fields := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "batch":
				fields["batch_size"] = *batch
			case "interval":
				fields["interval_ms"] = interval.Milliseconds()
			case "per-user":
				fields["per_user_limit"] = *perUser
			case "max-waiting":
				fields["max_waiting"] = *maxWaiting
			}
		})
		if len(fields) == 0 {
			return usageError("set: nothing to set")
		}
		return patch(ctx, c, args[0], fields)
	}
	return usageError("unknown command " + strconv.Quote(cmd))
}

func oneID(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usageError(cmd + " wants one campaign ID")
	}
	return args[0], nil
}

func create(ctx context.Context, c *client, args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	id := fs.String("id", "", "campaign ID (required)")
	stock := fs.Int64("stock", 0, "stock (required)")
	batch := fs.Int("batch", 0, "entries the scheduler moves per interval (0: the default, 100)")
	interval := fs.Duration("interval", 0, "how often the scheduler moves a batch, whole milliseconds (0: the default, 1s)")
	perUser := fs.Int("per-user", 0, "issuances one user may hold (0: the default, 1)")
	maxWaiting := fs.Int64("max-waiting", 0, "line cap: newcomers hear sold out once this many wait (0: none)")
	opens := fs.String("opens", "", "when admission opens, RFC 3339 (empty: now)")
	closes := fs.String("closes", "", "when admission closes, RFC 3339 (empty: never)")
	paused := fs.Bool("paused", false, "create it paused")
	shards := fs.Int("shards", 0, "spread the line over this many sub-lines (a Redis Cluster spreads them over its masters; 0: one line)")
	v1 := fs.Bool("v1", false, "a V1 (validate-first) campaign: admission decides the stock and publishes to Kafka from the request itself")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *id == "" || *stock <= 0 || fs.NArg() > 0 {
		return usageError("create wants -id and -stock > 0, and no other arguments")
	}
	body := map[string]any{"id": *id, "stock": *stock}
	if *batch != 0 {
		body["batch_size"] = *batch
	}
	if *interval != 0 {
		body["interval_ms"] = interval.Milliseconds()
	}
	if *perUser != 0 {
		body["per_user_limit"] = *perUser
	}
	if *maxWaiting != 0 {
		body["max_waiting"] = *maxWaiting
	}
	if *opens != "" {
		body["opens_at"] = *opens
	}
	if *closes != "" {
		body["closes_at"] = *closes
	}
	if *paused {
		body["paused"] = true
	}
	if *shards != 0 {
		body["shards"] = *shards
	}
	if *v1 {
		body["mode"] = "v1-validate-first"
	}
	var v httpapi.AdminCampaign
	if err := c.do(ctx, "POST", "/campaigns", body, &v); err != nil {
		return err
	}
	printOne(v)
	return nil
}

// patch reads the campaign's version and PATCHes fields at it, reading
// again if another writer got in between.
func patch(ctx context.Context, c *client, id string, fields map[string]any) error {
	for attempt := 1; ; attempt++ {
		var cur httpapi.AdminCampaign
		if err := c.do(ctx, "GET", "/campaigns/"+id, nil, &cur); err != nil {
			return err
		}
		fields["version"] = cur.Version
		var v httpapi.AdminCampaign
		err := c.do(ctx, "PATCH", "/campaigns/"+id, fields, &v)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "version_conflict" && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		printOne(v)
		return nil
	}
}

func list(ctx context.Context, c *client, ids []string) error {
	var l httpapi.AdminCampaignList
	if err := c.do(ctx, "GET", "/campaigns", nil, &l); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var rows []httpapi.AdminCampaign
	for _, v := range l.Campaigns {
		if len(want) == 0 || want[v.ID] {
			rows = append(rows, v)
		}
	}
	printTable(rows)
	return nil
}

func printOne(v httpapi.AdminCampaign) { printTable([]httpapi.AdminCampaign{v}) }

// printTable prints campaigns in fixed-width columns, so the rows of
// separate calls line up.
func printTable(rows []httpapi.AdminCampaign) {
	const format = "%-16s %-9s %3s %6s %14s %8s %7s %9s %6s %9s %6s %9s\n"
	fmt.Printf(format, "ID", "STATE", "V", "STOCK", "BATCH/INTERVAL", "ADMITTED", "WAITING", "IN_FLIGHT", "ISSUED", "REMAINING", "RATE/S", "DRAINED/S")
	for _, v := range rows {
		cells := []any{v.ID, "?", strconv.FormatInt(v.Version, 10), strconv.FormatInt(v.Stock, 10),
			fmt.Sprintf("%d/%s", v.BatchSize, time.Duration(v.IntervalMS)*time.Millisecond)}
		if n := v.LiveNumbers; n != nil {
			cells[1] = n.State
			drained := "-"
			if n.DrainedPerSec != nil {
				drained = strconv.FormatFloat(*n.DrainedPerSec, 'f', 0, 64)
			}
			cells = append(cells, strconv.FormatInt(n.Admitted, 10), strconv.FormatInt(n.Waiting, 10),
				strconv.FormatInt(n.InFlight, 10), strconv.FormatInt(n.Issued, 10), strconv.FormatInt(n.Remaining, 10),
				strconv.FormatFloat(n.RatePerSec, 'f', -1, 64), drained)
		} else {
			cells = append(cells, "?", "?", "?", "?", "?", "?", "?")
		}
		fmt.Printf(format, cells...)
	}
}

type client struct {
	base, token string
	http        *http.Client
}

// apiError is an admin error answer.
type apiError struct {
	Status        int
	Code, Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e httpapi.ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &apiError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return json.Unmarshal(b, out)
}
