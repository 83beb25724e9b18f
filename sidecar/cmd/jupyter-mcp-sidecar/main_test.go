package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	old, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close() // leaves the socket file behind, as a crash would

	tests := []struct {
		name, addr, token, wantErr string
	}{
		{"fresh unix socket", "unix:" + filepath.Join(dir, "new.sock"), "", ""},
		{"stale socket replaced", "unix:" + stale, "", ""},
		{"other file kept", "unix:" + regular, "", "is not a socket; refusing to remove it"},
		{"tcp without token", "127.0.0.1:0", "", "set --token"},
		{"tcp with token", "127.0.0.1:0", "s3cret", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := listen(tc.addr, tc.token)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
		})
	}
	if data, err := os.ReadFile(regular); err != nil || string(data) != "keep me" {
		t.Fatalf("the regular file was touched: %q %v", data, err)
	}
}
