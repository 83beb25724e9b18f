package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// rawKernel is the independent baseline: a plain websocket client written
// here, not the sidecar's kernel package, speaking the kernel websocket
// protocol (v1 binary framing, the server's default) directly to
// <lab>/api/kernels/<id>/channels.
type rawKernel struct {
	ws      *websocket.Conn
	session string
	n       int
}

// kernelOf returns the id of the kernel of the notebook's Jupyter session.
func kernelOf(b *testing.B, lab *labtest.Lab, path string) string {
	resp, err := labtest.AuthClient("token " + lab.Token).Get(lab.URL + "api/sessions")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sessions []struct {
		Path   string `json:"path"`
		Kernel struct {
			ID string `json:"id"`
		} `json:"kernel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sessions); err != nil {
		b.Fatal(err)
	}
	for _, s := range sessions {
		if s.Path == path {
			return s.Kernel.ID
		}
	}
	b.Fatalf("no session for %s", path)
	return ""
}

func dialRawKernel(b *testing.B, lab *labtest.Lab, kernelID string) *rawKernel {
	session := fmt.Sprintf("bench-raw-%d", time.Now().UnixNano())
	u := strings.Replace(lab.URL, "http", "ws", 1) + "api/kernels/" + kernelID + "/channels?" +
		url.Values{"session_id": {session}}.Encode()
	d := websocket.Dialer{Subprotocols: []string{"v1.kernel.websocket.jupyter.org"}}
	ws, _, err := d.DialContext(b.Context(), u, http.Header{"Authorization": {"token " + lab.Token}})
	if err != nil {
		b.Fatal(err)
	}
	if ws.Subprotocol() != "v1.kernel.websocket.jupyter.org" {
		b.Fatalf("server refused the v1 subprotocol")
	}
	b.Cleanup(func() { ws.Close() })
	return &rawKernel{ws: ws, session: session}
}

// execute sends an execute_request on shell and reads until both the
// execute_reply and the iopub status idle of that request have arrived.
func (r *rawKernel) execute(b *testing.B, code string) {
	r.n++
	id := fmt.Sprintf("%s-%d", r.session, r.n)
	header, _ := json.Marshal(map[string]string{"msg_id": id, "msg_type": "execute_request", "session": r.session,
		"username": "bench", "date": time.Now().UTC().Format(time.RFC3339Nano), "version": "5.3"})
	content, _ := json.Marshal(map[string]any{"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true})
	parts := [][]byte{[]byte("shell"), header, []byte("{}"), []byte("{}"), content}
	// v1: u64le count of offsets, the offsets (start of each part, then
	// the end), then the parts.
	frame := binary.LittleEndian.AppendUint64(nil, uint64(len(parts)+1))
	pos := uint64(8 * (len(parts) + 2))
	for _, p := range parts {
		frame = binary.LittleEndian.AppendUint64(frame, pos)
		pos += uint64(len(p))
	}
	frame = binary.LittleEndian.AppendUint64(frame, pos)
	for _, p := range parts {
		frame = append(frame, p...)
	}
	if err := r.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		b.Fatal(err)
	}
	var replied, idle bool
	for !(replied && idle) {
		_, data, err := r.ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		off := func(i int) uint64 { return binary.LittleEndian.Uint64(data[8*(i+1):]) }
		part := func(i int) []byte { return data[off(i):off(i+1)] }
		var h, ph struct {
			MsgType string `json:"msg_type"`
			MsgID   string `json:"msg_id"`
		}
		_ = json.Unmarshal(part(1), &h)
		_ = json.Unmarshal(part(2), &ph)
		if ph.MsgID != id {
			continue
		}
		switch channel := string(part(0)); {
		case channel == "shell" && h.MsgType == "execute_reply":
			replied = true
		case channel == "iopub" && h.MsgType == "status":
			var st struct {
				State string `json:"execution_state"`
			}
			_ = json.Unmarshal(part(4), &st)
			idle = idle || st.State == "idle"
		}
	}
}
