package telemetry

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// loadTree reads testdata/BOARD/root into memory, turning %3A back into ':'
// (see testdata/README.md).
func loadTree(tb testing.TB, board string) fstest.MapFS {
	tb.Helper()
	dir := os.DirFS(filepath.Join("testdata", board, "root"))
	m := fstest.MapFS{}
	err := fs.WalkDir(dir, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dir, p)
		if err != nil {
			return err
		}
		name, err := url.PathUnescape(p)
		if err != nil {
			return err
		}
		m[name] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		tb.Fatalf("load %s: %v", board, err)
	}
	return m
}

// treeVcgencmd answers from testdata/BOARD/vcgencmd/COMMAND, or is nil when
// the board's scenario has no vcgencmd.
func treeVcgencmd(board string) func(context.Context, ...string) (string, error) {
	dir := filepath.Join("testdata", board, "vcgencmd")
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	return func(_ context.Context, args ...string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, strings.Join(args, "_")))
		if err != nil {
			return "", errors.New(`error=2 error_msg="Command not registered"`)
		}
		return string(b), nil
	}
}

// treeReader is a Reader over a test tree with a fixed disk.
func treeReader(tb testing.TB, board string) *Reader {
	return &Reader{
		Root:     loadTree(tb, board),
		Vcgencmd: treeVcgencmd(board),
		StatFS:   func(string) (uint64, uint64, error) { return 12 << 30, 29 << 30, nil },
		MediaDir: "/var/lib/makercast/media",
		Version:  "1.2.3",
	}
}

func ptr[T any](v T) *T { return &v }
