package kernel

import (
	"encoding/json"
	"strings"
	"testing"
)

func iopub(msgType, content string) *Message {
	return &Message{Channel: "iopub", Header: Header{MsgType: msgType}, Content: json.RawMessage(content)}
}

func TestOutputs(t *testing.T) {
	tests := []struct {
		name string
		msgs []*Message
		want string // JSON of the outputs
	}{
		{"streams of one name merge", []*Message{
			iopub("stream", `{"name":"stdout","text":"a\n"}`),
			iopub("stream", `{"name":"stdout","text":"b\n"}`),
			iopub("stream", `{"name":"stderr","text":"e\n"}`),
		}, `[{"name":"stdout","output_type":"stream","text":"a\nb\n"},{"name":"stderr","output_type":"stream","text":"e\n"}]`},
		{"carriage return overwrites the line", []*Message{
			iopub("stream", `{"name":"stdout","text":"10%\r"}`),
			iopub("stream", `{"name":"stdout","text":"50%\r"}`),
			iopub("stream", `{"name":"stdout","text":"100%\ndone\n"}`),
		}, `[{"name":"stdout","output_type":"stream","text":"100%\ndone\n"}]`},
		{"backspace erases", []*Message{iopub("stream", `{"name":"stdout","text":"abX\bc\n"}`)},
			`[{"name":"stdout","output_type":"stream","text":"abc\n"}]`},
		{"clear_output", []*Message{
			iopub("stream", `{"name":"stdout","text":"old\n"}`),
			iopub("clear_output", `{"wait":false}`),
			iopub("stream", `{"name":"stdout","text":"new\n"}`),
		}, `[{"name":"stdout","output_type":"stream","text":"new\n"}]`},
		{"clear_output wait clears at the next output", []*Message{
			iopub("stream", `{"name":"stdout","text":"old\n"}`),
			iopub("clear_output", `{"wait":true}`),
			iopub("display_data", `{"data":{"text/plain":"x"},"metadata":{}}`),
		}, `[{"data":{"text/plain":"x"},"metadata":{},"output_type":"display_data"}]`},
		{"update_display_data replaces by display id; transient not stored", []*Message{
			iopub("display_data", `{"data":{"text/plain":"1"},"metadata":{},"transient":{"display_id":"d"}}`),
			iopub("update_display_data", `{"data":{"text/plain":"2"},"metadata":{},"transient":{"display_id":"d"}}`),
		}, `[{"data":{"text/plain":"2"},"metadata":{},"output_type":"display_data"}]`},
		{"result and error", []*Message{
			iopub("execute_result", `{"execution_count":3,"data":{"text/plain":"2"},"metadata":{}}`),
			iopub("error", `{"ename":"E","evalue":"v","traceback":["t"]}`),
		}, `[{"data":{"text/plain":"2"},"execution_count":3,"metadata":{},"output_type":"execute_result"},{"ename":"E","evalue":"v","output_type":"error","traceback":["t"]}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o Outputs
			for _, m := range tc.msgs {
				o.apply(m)
			}
			got, _ := json.Marshal(o.List())
			if string(got) != tc.want {
				t.Fatalf("outputs\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestOutputsStayBounded(t *testing.T) {
	var o Outputs
	line := strings.Repeat("x", 1023) + "\n"
	for range 5000 { // 5 MiB of text
		o.apply(iopub("stream", `{"name":"stdout","text":"`+strings.TrimSuffix(line, "\n")+`\n"}`))
	}
	var out struct{ Text string }
	_ = json.Unmarshal(o.List()[0], &out)
	if len(out.Text) > MaxStoredStreamBytes+100 || !strings.HasSuffix(out.Text, "[output truncated by jupyter-mcp-sidecar: more than 4 MiB of text]\n") {
		t.Fatalf("stored %d bytes of text, want at most %d ending in a truncation note", len(out.Text), MaxStoredStreamBytes)
	}
}
