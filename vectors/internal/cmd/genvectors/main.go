// Command genvectors writes the Missive test vectors. go generate runs it in
// the vectors directory; it writes every file that gen.Generate returns,
// relative to the current directory.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/missive-protocol/missive/vectors/internal/gen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
}

func run() error {
	files, err := gen.Generate()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.FromSlash(name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
