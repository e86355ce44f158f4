package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// proc is one program of the fleet that the run starts, kills and starts
// again: each start is an incarnation with its own log file
// (NAME.N.log), so a log shows one process's life.
type proc struct {
	name string   // "api-1", "worker-2", "redis"
	bin  string   // the program
	args []string // its flags
	dir  string   // where logs go
	env  []string // extra environment

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current incarnation exits
	n    int           // incarnations so far
	log  string        // the current incarnation's log file
	at   time.Time     // when the current incarnation started
}

// start runs a new incarnation; it does not wait for it to be ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is running", p.name)
		}
	}
	p.n++
	p.log = p.logOf(p.n)
	f, err := os.Create(p.log)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	// Its own process group: a Ctrl-C to the run does not reach it first,
	// and the run stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.cmd, p.done, p.at = cmd, done, time.Now()
	return nil
}

// signal sends sig to the current incarnation.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// kill9 kills the current incarnation with SIGKILL and waits for it to go.
func (p *proc) kill9() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.wait(10 * time.Second)
	return nil
}

// stop asks the current incarnation to end (SIGTERM) and waits up to d,
// then kills it.
func (p *proc) stop(d time.Duration) {
	if p.signal(syscall.SIGCONT) != nil { // a paused one must be able to exit
		return
	}
	_ = p.signal(syscall.SIGTERM)
	if !p.wait(d) {
		_ = p.signal(syscall.SIGKILL)
		p.wait(5 * time.Second)
	}
}

// wait waits up to d for the current incarnation to exit.
func (p *proc) wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// logOf is incarnation n's log file.
func (p *proc) logOf(n int) string {
	return filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.name, n))
}

// logs lists every incarnation's log file so far.
func (p *proc) logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, p.n)
	for i := range out {
		out[i] = p.logOf(i + 1)
	}
	return out
}

// logFile is the current incarnation's log.
func (p *proc) logFile() (string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log, p.at
}

// awaitLog waits until the current incarnation's log has a line containing
// s, or the incarnation exits, or ctx ends.
func (p *proc) awaitLog(ctx context.Context, s string) (string, error) {
	for {
		file, _ := p.logFile()
		if line, ok := grep(file, s); ok {
			return line, nil
		}
		if !p.running() {
			return "", fmt.Errorf("%s exited before logging %q; its log %s ends:\n%s", p.name, s, file, tail(file, 15))
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not log %q: %w; its log %s ends:\n%s", p.name, s, ctx.Err(), file, tail(file, 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// grep returns the last line of file containing s.
func grep(file, s string) (last string, found bool) {
	scan(file, s, func(line string) { last, found = line, true })
	return last, found
}

// count returns how many lines of file contain s.
func count(file, s string) (n int) {
	scan(file, s, func(string) { n++ })
	return n
}

// scan calls f with every line of file that contains s; a file that cannot
// be read has none.
func scan(file, s string, f func(line string)) {
	fh, err := os.Open(file)
	if err != nil {
		return
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			f(sc.Text())
		}
	}
}

func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// awaitPort waits until something accepts connections on addr.
func awaitPort(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing answers on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Redis durability modes: what the server persists and when it fsyncs.
const (
	fsyncAlways   = "always"   // AOF, fsync before every reply
	fsyncEverysec = "everysec" // AOF, fsync once a second (Redis's default AOF policy)
	fsyncOff      = "off"      // no AOF: RDB snapshots at Redis's default save points only (Debian's default)
)

// redisArgs are redis-server's flags for one durability mode, the data in dir.
func redisArgs(dir string, port int, mode string) ([]string, error) {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--protected-mode", "yes",
		"--dir", dir, "--daemonize", "no", "--logfile", ""}
	switch mode {
	case fsyncAlways, fsyncEverysec:
		args = append(args, "--appendonly", "yes", "--appendfsync", mode, "--save", "")
	case fsyncOff:
		args = append(args, "--appendonly", "no", "--save", "3600 1 300 100 60 10000")
	default:
		return nil, fmt.Errorf("redis durability mode %q: want %s, %s or %s", mode, fsyncAlways, fsyncEverysec, fsyncOff)
	}
	return args, nil
}

// redisServer is a redis-server of the run's own, not the test suite's: the
// run kills it with -9 and starts it again from its files.
func redisServer(dir string, mode string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(dir, "redis-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, "", err
	}
	args, err := redisArgs(data, port, mode)
	if err != nil {
		return nil, "", err
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errors.New("redis-server is not installed (scripts/redis.sh installs it)")
	}
	return &proc{name: "redis", bin: bin, args: args, dir: dir}, "127.0.0.1:" + strconv.Itoa(port), nil
}

// phaseAPI starts an api of its own for a phase (durability, failover) on
// redisAddrs, its Kafka producer idle (the phase's campaign is V2 and no
// worker runs), waits until it serves, and creates the phase's campaign
// through its admin API. The caller stops the api.
func phaseAPI(ctx context.Context, o options, dir, token, redisAddrs, prefix, topic, campaign string, extra ...string) (*proc, string, error) {
	brokers, err := env("COUPONQ_KAFKA_CLUSTER")
	if err != nil {
		return nil, "", err
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
	api := &proc{name: "api", bin: filepath.Join(o.bin, "api"), dir: dir,
		args: append([]string{"-addr", apiAddr, "-redis", redisAddrs, "-prefix", prefix, "-kafka", brokers, "-topic", topic}, extra...),
		env:  []string{"COUPONQ_ADMIN_TOKEN=" + token}}
	if err := api.start(); err != nil {
		return nil, "", err
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := api.awaitLog(wait, "api serving"); err != nil {
		api.stop(10 * time.Second)
		return nil, "", err
	}
	url := "http://" + apiAddr
	if err := createCampaign(ctx, url, token, check.Campaign{ID: campaign, Stock: 1 << 40, BatchSize: 100, Interval: time.Second}); err != nil {
		api.stop(10 * time.Second)
		return nil, "", err
	}
	return api, url, nil
}
