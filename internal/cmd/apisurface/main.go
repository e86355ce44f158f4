// Command apisurface counts the identifiers couponq's library packages
// export, the measure of how much a host has to learn: exported types,
// funcs, vars and consts, and the exported fields and methods of exported
// types (interface methods included). Tests, examples, commands and
// internal/ packages are left out; nested modules are counted like the rest.
//
//	go run ./internal/cmd/apisurface          # the total and a line per package
//	go run ./internal/cmd/apisurface -v       # every identifier counted
//	go run ./internal/cmd/apisurface -max 590 # exit 1 when the total is above 590
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "list every identifier counted")
	limit := flag.Int("max", 0, "fail when the total is above this (0: no limit)")
	root := flag.String("root", ".", "the repository's root")
	flag.Parse()
	byPkg, err := count(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apisurface:", err)
		os.Exit(2)
	}
	total := 0
	pkgs := mapKeys(byPkg)
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		ids := byPkg[pkg]
		total += len(ids)
		fmt.Printf("%5d  %s\n", len(ids), pkg)
		if *verbose {
			slices.Sort(ids)
			for _, id := range ids {
				fmt.Printf("         %s\n", id)
			}
		}
	}
	fmt.Printf("%5d  exported identifiers in %d library packages\n", total, len(byPkg))
	if *limit > 0 && total > *limit {
		fmt.Printf("apisurface: %d is above the limit of %d\n", total, *limit)
		os.Exit(1)
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// count parses every library package under root and returns, per package
// directory, the identifiers it exports.
func count(root string) (map[string][]string, error) {
	byPkg := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "examples" || name == "internal" || name == "testdata" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		dir, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		dir = filepath.ToSlash(dir)
		byPkg[dir] = append(byPkg[dir], exported(f)...)
		return nil
	})
	return byPkg, err
}

// exported lists what f exports, each as Name, Type.Field or Type.Method.
func exported(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil {
				out = append(out, d.Name.Name)
				continue
			}
			if recv := receiver(d.Recv.List[0].Type); ast.IsExported(recv) {
				out = append(out, recv+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						out = append(out, s.Name.Name)
						out = append(out, members(s.Name.Name, s.Type)...)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							out = append(out, n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// members lists the exported fields of a struct type, embedded ones
// included, and the exported methods of an interface type.
func members(typ string, t ast.Expr) []string {
	var out []string
	switch t := t.(type) {
	case *ast.StructType:
		for _, f := range t.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() {
					out = append(out, typ+"."+n.Name)
				}
			}
			if len(f.Names) == 0 {
				if n := receiver(f.Type); ast.IsExported(n) {
					out = append(out, typ+"."+n)
				}
			}
		}
	case *ast.InterfaceType:
		for _, m := range t.Methods.List {
			for _, n := range m.Names {
				if n.IsExported() {
					out = append(out, typ+"."+n.Name)
				}
			}
		}
	}
	return out
}

// receiver names the type of a receiver or an embedded field: T, *T, T[P],
// pkg.T.
func receiver(t ast.Expr) string {
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.SelectorExpr:
			return x.Sel.Name
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
