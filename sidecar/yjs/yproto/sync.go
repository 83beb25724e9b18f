// Package yproto implements the y-protocols messages a Yjs peer exchanges
// over a websocket: the sync protocol (SyncStep1, SyncStep2, Update), the
// awareness protocol (presence states), and the Jupyter-specific RAW message
// jupyter-collaboration uses for "save" requests.
//
// Every message is lib0 encoded: a varUint message type, then the payload.
package yproto

import (
	"errors"
	"fmt"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// Message types (the first varUint of a websocket message).
const (
	MessageSync           = 0
	MessageAwareness      = 1
	MessageRaw            = 2 // y-protocols "auth"; jupyter-collaboration uses it for save
	MessageQueryAwareness = 3
)

// Sync message subtypes.
const (
	SyncStep1  = 0 // payload: state vector
	SyncStep2  = 1 // payload: update with what the receiver lacks
	SyncUpdate = 2 // payload: incremental update
)

// Message is a decoded websocket message.
type Message struct {
	Type uint64
	// SyncType is set for MessageSync.
	SyncType uint64
	// Payload is the state vector or update (sync), the awareness update
	// (awareness), or the rest of the message (raw and unknown types).
	Payload []byte
}

// Decode parses one message.
func Decode(b []byte) (Message, error) {
	d := yjs.NewDecoder(b)
	t, err := d.ReadVarUint()
	if err != nil {
		return Message{}, err
	}
	m := Message{Type: t}
	switch t {
	case MessageSync:
		if m.SyncType, err = d.ReadVarUint(); err != nil {
			return m, err
		}
		if m.SyncType > SyncUpdate {
			return m, fmt.Errorf("yproto: unknown sync message type %d", m.SyncType)
		}
		m.Payload, err = d.ReadVarUint8Array()
	case MessageAwareness:
		m.Payload, err = d.ReadVarUint8Array()
	default:
		m.Payload = append([]byte{}, b[len(b)-d.Remaining():]...)
	}
	return m, err
}

func encodeSync(sub uint64, payload []byte) []byte {
	e := yjs.NewEncoder()
	e.WriteVarUint(MessageSync)
	e.WriteVarUint(sub)
	e.WriteVarUint8Array(payload)
	return e.Bytes()
}

// EncodeSyncStep1 wraps an encoded state vector.
func EncodeSyncStep1(stateVector []byte) []byte { return encodeSync(SyncStep1, stateVector) }

// EncodeSyncStep2 wraps an update answering a SyncStep1.
func EncodeSyncStep2(update []byte) []byte { return encodeSync(SyncStep2, update) }

// EncodeUpdate wraps an incremental update.
func EncodeUpdate(update []byte) []byte { return encodeSync(SyncUpdate, update) }

// SyncStep1For returns the SyncStep1 message announcing doc's state.
func SyncStep1For(doc *yjs.Doc) []byte { return EncodeSyncStep1(doc.EncodeStateVector()) }

// HandleSync applies a sync message to doc. For SyncStep1 it returns the
// SyncStep2 reply to send back; updates are applied with the given origin.
func HandleSync(doc *yjs.Doc, m Message, origin any) (reply []byte, err error) {
	if m.Type != MessageSync {
		return nil, errors.New("yproto: not a sync message")
	}
	switch m.SyncType {
	case SyncStep1:
		u, err := doc.EncodeStateAsUpdateFromEncoded(m.Payload)
		if err != nil {
			return nil, err
		}
		return EncodeSyncStep2(u), nil
	case SyncStep2, SyncUpdate:
		return nil, doc.ApplyUpdate(m.Payload, origin)
	}
	return nil, fmt.Errorf("yproto: unknown sync message type %d", m.SyncType)
}

// EncodeSaveRequest is jupyter-collaboration's RAW save request:
// [2][varString "save"][varUint id].
func EncodeSaveRequest(id uint64) []byte {
	e := yjs.NewEncoder()
	e.WriteVarUint(MessageRaw)
	e.WriteVarString("save")
	e.WriteVarUint(id)
	return e.Bytes()
}

// DecodeRaw returns the string of a RAW message from the server, e.g. the
// JSON {"type":"save","responseTo":id,"status":...}.
func DecodeRaw(m Message) (string, error) {
	if m.Type != MessageRaw {
		return "", errors.New("yproto: not a raw message")
	}
	return yjs.NewDecoder(m.Payload).ReadVarString()
}
