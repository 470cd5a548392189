package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pointersToMissingFiles are names of files a user of the binary or of the
// repository does not have: the project's shared folder lives outside it.
var pointersToMissingFiles = []string{"../shared", "shared/BEDROCK.md", "BEDROCK.md"}

// TestUserTextPointsToNoMissingFile: nothing a user reads (the README, the
// examples, the embedded configuration references and scenarios, every
// string literal the program can print) points to a file they do not have.
// Comments may cite the project's notes; text shown to users may not.
func TestUserTextPointsToNoMissingFile(t *testing.T) {
	root := filepath.Join("..", "..")
	var docs []string
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, pattern := range []string{"examples/*", "internal/*/*.yaml", "internal/*/*/*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		docs = append(docs, m...)
	}
	for _, p := range docs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkText(t, p, 0, string(data))
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					checkText(t, p, fset.Position(lit.Pos()).Line, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkText(t *testing.T, file string, line int, s string) {
	t.Helper()
	for _, bad := range pointersToMissingFiles {
		if i := strings.Index(s, bad); i >= 0 {
			t.Errorf("%s:%d: user-facing text points to %q, which users do not have: %q", file, line, bad, s[max(0, i-40):min(len(s), i+40)])
			return
		}
	}
}
