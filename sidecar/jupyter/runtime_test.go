package jupyter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuntimeDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"JUPYTER_RUNTIME_DIR": "/r", "HOME": "/h"}, "/r"},
		{map[string]string{"JUPYTER_DATA_DIR": "/d", "HOME": "/h"}, "/d/runtime"},
		{map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/jupyter/runtime"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/jupyter/runtime"},
	}
	for _, tc := range tests {
		if got := RuntimeDir(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("RuntimeDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// The data dir ignores JUPYTER_RUNTIME_DIR (the runtime dir may be elsewhere).
func TestDataDir(t *testing.T) {
	env := map[string]string{"JUPYTER_RUNTIME_DIR": "/r", "HOME": "/h"}
	if got := DataDir(func(k string) string { return env[k] }); got != "/h/.local/share/jupyter" {
		t.Errorf("DataDir = %q", got)
	}
}

func TestReadServerInfo(t *testing.T) {
	tests := []struct {
		name, file     string
		wantURL, wantE string
	}{
		{"standalone", `{"port": 8888, "base_url": "/", "token": "t", "root_dir": "/w", "pid": 42, "hostname": "0.0.0.0"}`, "http://127.0.0.1:8888/", ""},
		{"hub prefix", `{"port": 9000, "base_url": "/user/alice/", "token": "t", "pid": 42}`, "http://127.0.0.1:9000/user/alice/", ""},
		{"no slashes", `{"port": 9000, "base_url": "user/alice", "pid": 42}`, "http://127.0.0.1:9000/user/alice/", ""},
		{"tls", `{"port": 9443, "base_url": "/", "secure": true, "pid": 42}`, "https://127.0.0.1:9443/", ""},
		{"unix socket", `{"port": 0, "sock": "/run/j.sock", "base_url": "/", "pid": 42}`, "http://localhost/", ""},
		{"no address", `{"base_url": "/", "pid": 42}`, "", "neither a port nor a socket"},
		{"corrupt", `{"port": `, "", "parse Jupyter runtime file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "jpserver-42.json"), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			info, err := ReadServerInfo(dir, 42)
			if tc.wantE != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantE) {
					t.Fatalf("error = %v, want %q", err, tc.wantE)
				}
				return
			}
			if err != nil || info.URL != tc.wantURL {
				t.Fatalf("ReadServerInfo = %+v, %v; want URL %s", info, err, tc.wantURL)
			}
		})
	}
	if _, err := ReadServerInfo(t.TempDir(), 7); err == nil {
		t.Fatal("no error for a missing runtime file")
	}
}
