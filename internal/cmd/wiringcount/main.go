// Command wiringcount measures how much code a host writes to wire couponq:
// the lines between the markers "// couponq wiring: begin" and
// "// couponq wiring: end" in a Go file, and the couponq import paths the
// file needs.
//
//	go run ./internal/cmd/wiringcount examples/production/main.go
//	go run ./internal/cmd/wiringcount -max-lines 40 -max-imports 6 examples/production/main.go
//
// A line counts when it holds code. Blank lines and comments do not, nor
// error checks: an `if err != nil { ... }` (a condition that starts with
// err != nil) counts nothing, and one with an init statement
// (`if err := f(); err != nil {`) counts its first line only, for the call
// it makes. Imports and the host's own router lie outside the markers.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
)

const (
	beginMark = "// couponq wiring: begin"
	endMark   = "// couponq wiring: end"
)

func main() {
	maxLines := flag.Int("max-lines", 0, "fail when the wiring is longer (0: no limit)")
	maxImports := flag.Int("max-imports", 0, "fail when the file imports more couponq packages (0: no limit)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wiringcount [-max-lines N] [-max-imports N] file.go")
		os.Exit(2)
	}
	lines, imports, err := count(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wiringcount:", err)
		os.Exit(2)
	}
	fmt.Printf("%s: %d lines of couponq wiring, %d couponq import paths (%s)\n",
		flag.Arg(0), lines, len(imports), strings.Join(imports, ", "))
	if (*maxLines > 0 && lines > *maxLines) || (*maxImports > 0 && len(imports) > *maxImports) {
		fmt.Printf("wiringcount: over the limit of %d lines and %d import paths\n", *maxLines, *maxImports)
		os.Exit(1)
	}
}

// count returns the wiring's line count and the couponq import paths.
func count(path string) (int, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return 0, nil, err
	}
	var imports []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p == "github.com/couponq/couponq" || strings.HasPrefix(p, "github.com/couponq/couponq/") {
			imports = append(imports, strings.TrimPrefix(p, "github.com/couponq/couponq/"))
		}
	}
	lines := strings.Split(string(src), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case beginMark:
			begin = i + 1 // 1-based line of the mark
		case endMark:
			end = i + 1
		}
	}
	if begin < 0 || end < begin {
		return 0, nil, fmt.Errorf("%s: no %q ... %q region", path, beginMark, endMark)
	}
	skip := map[int]bool{} // 1-based lines of error checks
	ast.Inspect(f, func(n ast.Node) bool {
		is, ok := n.(*ast.IfStmt)
		if !ok || !errCheck(is.Cond) {
			return true
		}
		from := fset.Position(is.Pos()).Line
		if is.Init != nil {
			from++ // the init makes a call: its line counts
		}
		for l := from; l <= fset.Position(is.End()).Line; l++ {
			skip[l] = true
		}
		return true
	})
	n := 0
	for l := begin + 1; l < end; l++ {
		text := strings.TrimSpace(lines[l-1])
		if text == "" || strings.HasPrefix(text, "//") || skip[l] {
			continue
		}
		n++
	}
	return n, imports, nil
}

// errCheck reports whether cond is err != nil, or starts with it (err !=
// nil && ...).
func errCheck(cond ast.Expr) bool {
	b, ok := cond.(*ast.BinaryExpr)
	if !ok {
		return false
	}
	if b.Op == token.LAND {
		return errCheck(b.X)
	}
	x, ok1 := b.X.(*ast.Ident)
	y, ok2 := b.Y.(*ast.Ident)
	return b.Op == token.NEQ && ok1 && ok2 && x.Name == "err" && y.Name == "nil"
}
