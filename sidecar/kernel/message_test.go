package kernel

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestV1RoundTrip(t *testing.T) {
	m, err := newMessage("shell", "execute_request", "sess", map[string]any{"code": "1+1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Buffers = [][]byte{[]byte("buf0"), {}}
	b, err := encodeV1(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeV1(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Channel != "shell" || got.Header != m.Header || got.ParentHeader.MsgID != "" {
		t.Fatalf("decoded %+v", got)
	}
	var c map[string]string
	if err := json.Unmarshal(got.Content, &c); err != nil || c["code"] != "1+1" {
		t.Fatalf("content %s", got.Content)
	}
	if len(got.Buffers) != 2 || !bytes.Equal(got.Buffers[0], []byte("buf0")) {
		t.Fatalf("buffers %q", got.Buffers)
	}
}

func TestDecodeV1RejectsMalformed(t *testing.T) {
	good, _ := encodeV1(&Message{Channel: "iopub", Metadata: json.RawMessage("{}"), Content: json.RawMessage("{}")})
	cases := map[string][]byte{
		"empty":          nil,
		"short":          {1, 2, 3},
		"too few parts":  {2, 0, 0, 0, 0, 0, 0, 0},
		"huge count":     {255, 255, 255, 255, 255, 255, 255, 255},
		"truncated body": good[:len(good)-3],
	}
	for name, b := range cases {
		if _, err := decodeV1(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzDecodeV1(f *testing.F) {
	good, _ := encodeV1(&Message{Channel: "iopub", Metadata: json.RawMessage("{}"), Content: json.RawMessage(`{"a":1}`)})
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeV1(b) // must not panic
	})
}

func TestLegacyDefaultsToShell(t *testing.T) {
	m, err := decodeLegacy([]byte(`{"header":{"msg_id":"1","msg_type":"execute_reply"},"parent_header":{},"metadata":{},"content":{}}`))
	if err != nil || m.Channel != "shell" {
		t.Fatalf("%+v %v", m, err)
	}
}
