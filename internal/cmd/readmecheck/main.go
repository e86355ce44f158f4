// Command readmecheck holds the README to what it shows: every Go snippet
// that starts with a package clause is built (and vetted, tests included)
// in a module of its own against this repository's modules, and the production wiring the
// README quotes must be, line for line, the wiring of
// examples/production/main.go.
//
//	go run ./internal/cmd/readmecheck            # from the repository's root
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modules are the repository's modules a snippet may import, by path.
var modules = map[string]string{
	"github.com/couponq/couponq":                      ".",
	"github.com/couponq/couponq/couponq/pgstore":      "couponq/pgstore",
	"github.com/couponq/couponq/couponq/metrics/prom": "couponq/metrics/prom",
	"github.com/couponq/couponq/couponq/tracing":      "couponq/tracing",
	"github.com/couponq/couponq/couponq/ratelimit":    "couponq/ratelimit",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "readmecheck:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return err
	}
	blocks := goBlocks(string(readme))
	if err := checkProduction(root, blocks); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "readmecheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// A program is built alone; the blocks of one other package (a file
	// and its test) are built together.
	built := 0
	var errs []error
	pkgs := map[string][]block{}
	for i, b := range blocks {
		name, ok := strings.CutPrefix(strings.SplitN(b.text, "\n", 2)[0], "package ")
		switch {
		case !ok:
			continue
		case name == "main":
			pkgs[fmt.Sprint("main", i)] = []block{b}
		default:
			pkgs[name] = append(pkgs[name], b)
		}
	}
	for name, bs := range pkgs {
		if err := build(root, filepath.Join(tmp, name), bs); err != nil {
			errs = append(errs, fmt.Errorf("README.md line %d: %w", bs[0].line, err))
			continue
		}
		built += len(bs)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("readmecheck: %d Go files in README.md build; its production wiring is examples/production's\n", built)
	return nil
}

type block struct {
	line int // 1-based line of the opening fence
	text string
}

// goBlocks returns the README's ```go blocks.
func goBlocks(s string) []block {
	var out []block
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		out = append(out, block{line: start + 1, text: strings.Join(body, "\n") + "\n"})
	}
	return out
}

// checkProduction finds the README block that quotes the production
// example's imports and wiring and compares it with the file.
func checkProduction(root string, blocks []block) error {
	src, err := os.ReadFile(filepath.Join(root, "examples/production/main.go"))
	if err != nil {
		return err
	}
	file := string(src)
	const begin, end = "// couponq wiring: begin\n", "// couponq wiring: end"
	a, b := strings.Index(file, begin), strings.Index(file, end)
	if a < 0 || b < a {
		return errors.New("examples/production/main.go has no wiring markers")
	}
	var want []string
	for _, l := range strings.Split(file[a+len(begin):b], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			want = append(want, l)
		}
	}
	for _, bl := range blocks {
		if !strings.Contains(bl.text, "redisq.New(") || !strings.Contains(bl.text, "kafkadispatch.New(") ||
			!strings.HasPrefix(bl.text, "import (") {
			continue
		}
		_, wiring, ok := strings.Cut(bl.text, "\n)\n")
		if !ok {
			return fmt.Errorf("README.md line %d: the production block has no import block", bl.line)
		}
		var got []string
		for _, l := range strings.Split(wiring, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				got = append(got, l)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("README.md line %d: the production wiring differs from examples/production/main.go's", bl.line)
		}
		return nil
	}
	return errors.New("README.md quotes no production wiring (an import block, then redisq.New ... kafkadispatch.New)")
}

// build writes the files into dir as a module that uses this repository's
// modules and vets it (tests included: a file importing "testing" is a
// test file).
func build(root, dir string, files []block) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var mod bytes.Buffer
	mod.WriteString("module readmesnippet\n\ngo 1.26.0\n\n")
	for path, rel := range modules {
		fmt.Fprintf(&mod, "replace %s => %s\n", path, filepath.Join(root, rel))
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), mod.Bytes(), 0o644); err != nil {
		return err
	}
	var all strings.Builder
	for i, f := range files {
		name := fmt.Sprintf("file%d.go", i)
		if strings.Contains(f.text, `"testing"`) {
			name = fmt.Sprintf("file%d_test.go", i)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.text), 0o644); err != nil {
			return err
		}
		all.WriteString(f.text)
	}
	for path := range modules {
		if !strings.Contains(all.String(), `"`+path) {
			continue
		}
		if out, err := goCmd(dir, "mod", "edit", "-require="+path+"@v0.0.0"); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	if out, err := goCmd(dir, "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy: %w: %s", err, out)
	}
	if out, err := goCmd(dir, "vet", "."); err != nil {
		return fmt.Errorf("go vet: %w: %s", err, out)
	}
	return nil
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
