package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The signature of jupyter_client's Session.sign for the same key and
// frames (computed with jupyter_client 8.10).
func TestSignerMatchesJupyterClient(t *testing.T) {
	parts := [][]byte{[]byte(`{"msg_id":"a"}`), []byte(`{}`), []byte(`{}`), []byte(`{"code":"1+1"}`)}
	const want = "712005a3ddfac00ddc4b5e88335391b3a6ee2873954746371defcd8f11725fad"
	s := newSigner("secret-key")
	if got := string(s.sign(parts)); got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
	if !s.valid([]byte(want), parts) || s.valid([]byte(strings.Repeat("0", 64)), parts) {
		t.Fatal("valid does not tell the right signature from a wrong one")
	}
	if none := newSigner(""); len(none.sign(parts)) != 0 || !none.valid(nil, parts) {
		t.Fatal("an empty key must sign nothing and accept anything")
	}
}

func TestDecodeZMQ(t *testing.T) {
	z := &zmqChannels{sign: newSigner("k")}
	frames := func(prefix ...string) [][]byte {
		body := [][]byte{[]byte(`{"msg_id":"m1","msg_type":"status"}`), []byte(`{"msg_id":"p1"}`), []byte(`{}`), []byte(`{"execution_state":"idle"}`)}
		out := [][]byte{}
		for _, p := range prefix {
			out = append(out, []byte(p))
		}
		out = append(out, delimiter, z.sign.sign(body))
		return append(append(out, body...), []byte("buf"))
	}
	for _, tc := range []struct {
		name  string
		parts [][]byte
		ok    bool
	}{
		{"shell reply", frames(), true},
		{"iopub with topic and identities", frames("kernel.x.status", "id2"), true},
		{"wrong signature", func() [][]byte { f := frames(); f[1] = []byte("bad"); return f }(), false},
		{"no delimiter", frames()[2:], false},
		{"too short", frames()[:4], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := z.decode("iopub", tc.parts)
			if !tc.ok {
				if err == nil {
					t.Fatalf("decoded %+v", m)
				}
				return
			}
			if err != nil || m.Header.MsgID != "m1" || m.ParentHeader.MsgID != "p1" || string(m.Content) != `{"execution_state":"idle"}` || len(m.Buffers) != 1 || m.Channel != "iopub" {
				t.Fatalf("decode = %+v, %v", m, err)
			}
		})
	}
}

func TestReadConnectionFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file string
		addr       string // of the shell port; "" for an error
	}{
		{"loopback", `{"transport":"tcp","ip":"127.0.0.1","shell_port":5001,"key":"k","signature_scheme":"hmac-sha256"}`, "127.0.0.1:5001"},
		{"any address", `{"transport":"tcp","ip":"0.0.0.0","shell_port":5002,"key":"","signature_scheme":""}`, "127.0.0.1:5002"},
		{"ipv6", `{"transport":"tcp","ip":"::1","shell_port":5003,"key":""}`, "[::1]:5003"},
		{"ipc", `{"transport":"ipc","ip":"/tmp/k","shell_port":1}`, ""},
		{"other signature", `{"transport":"tcp","ip":"127.0.0.1","key":"k","signature_scheme":"hmac-md5"}`, ""},
		{"not json", `{`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "kernel-"+tc.name+".json"), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			info, err := readConnectionFile(dir, tc.name)
			if tc.addr == "" {
				if err == nil {
					t.Fatalf("read %+v, want an error", info)
				}
				return
			}
			if err != nil || info.addr(info.ShellPort) != tc.addr {
				t.Fatalf("readConnectionFile = %+v, %v", info, err)
			}
		})
	}
	for _, id := range []string{"missing", "../loopback", "a/b", ""} {
		if _, err := readConnectionFile(dir, id); err == nil {
			t.Fatalf("kernel id %q: read without error", id)
		}
	}
}
