// Package yjs is a pure-Go implementation of the Yjs CRDT, written from the
// Yjs binary format and observed behaviour, so that the sidecar can join a
// jupyter-collaboration room as an ordinary Yjs peer.
//
// It covers what a YNotebook peer needs: lib0 encoding, the v1 update format
// with every struct and content kind, state vectors, diffs and MergeUpdates,
// the YATA integration algorithm with pending structs and delete sets
// (out-of-order and duplicate delivery are fine), YArray, YMap and YText
// (indexes in UTF-16 code units, as in Yjs) including nested types, toJSON,
// and transactions that emit one v1 update each and report which types
// changed. The y-protocols sync and awareness messages live in the yproto
// sub-package.
//
// Like yrs (which jupyter-collaboration servers run) and Yjs v14, the store
// is hole tolerant: a struct whose own dependencies are present is
// integrated even when earlier clocks of its client are missing, so Skip
// structs in a server's SyncStep2 do not hold back the rest of the document.
//
// Map from the Yjs sources: lib0.go (lib0/encoding), id.go (ID, state vector,
// DeleteSet), content.go (Content*), item.go (Item, GC, Skip), store.go
// (StructStore), update.go and merge.go (encoding, decoding), integrate.go
// (Item.integrate, integrateStructs, delete set application), transaction.go,
// branch.go (AbstractType), array.go, map.go, text.go.
//
// A Doc is not safe for concurrent use: confine it to one goroutine or guard
// it with a mutex.
package yjs

import (
	"crypto/rand"
	"encoding/binary"
	"sort"
)

// Doc is a Yjs document: a set of named root types over one struct store.
type Doc struct {
	clientID uint64
	store    *structStore
	share    map[string]*Branch

	txn         *Transaction
	updateFns   []func(update []byte, txn *Transaction)
	afterTxnFns []func(txn *Transaction)
	gcDeleted   bool
}

// NewDoc returns an empty document with a random 32-bit client ID (as Yjs
// uses; larger IDs round-trip badly through some JS code paths).
func NewDoc() *Doc {
	return NewDocWithClientID(randomClientID())
}

// NewDocWithClientID returns an empty document with the given client ID.
func NewDocWithClientID(id uint64) *Doc {
	return &Doc{clientID: id, store: newStructStore(), share: map[string]*Branch{}, gcDeleted: true}
}

func randomClientID() uint64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint64(binary.LittleEndian.Uint32(b[:]))
}

// ClientID returns the client ID used for local edits.
func (d *Doc) ClientID() uint64 { return d.clientID }

// SetGC controls whether the content of deleted items is discarded when a
// transaction ends (the default, like Yjs's gc option). Types are kept either way.
func (d *Doc) SetGC(on bool) { d.gcDeleted = on }

// get returns the root type called name, creating it untyped if needed.
func (d *Doc) get(name string) *Branch {
	b := d.share[name]
	if b == nil {
		b = newBranch(d, TypeUnknown)
		b.name = name
		d.share[name] = b
	}
	return b
}

func (d *Doc) getTyped(name string, ref TypeRef) *Branch {
	b := d.get(name)
	if b.typeRef == TypeUnknown {
		b.typeRef = ref
	}
	return b
}

// GetArray returns the root YArray called name.
func (d *Doc) GetArray(name string) *Array { return &Array{d.getTyped(name, TypeArray)} }

// GetMap returns the root YMap called name.
func (d *Doc) GetMap(name string) *Map { return &Map{d.getTyped(name, TypeMap)} }

// GetText returns the root YText called name.
func (d *Doc) GetText(name string) *Text { return &Text{d.getTyped(name, TypeText)} }

// RootNames lists the names of the root types present, sorted.
func (d *Doc) RootNames() []string {
	names := make([]string, 0, len(d.share))
	for n := range d.share {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ToJSON returns every root type converted with its ToJSON.
func (d *Doc) ToJSON() map[string]any {
	out := map[string]any{}
	for n, b := range d.share {
		out[n] = b.ToJSON()
	}
	return out
}

// StateVector returns the document's state vector (excluding pending structs).
func (d *Doc) StateVector() StateVector { return d.store.stateVector() }

// EncodeStateVector returns the encoded state vector (the SyncStep1 payload).
func (d *Doc) EncodeStateVector() []byte { return EncodeStateVector(d.StateVector()) }

// OnUpdate registers fn to receive the v1 update of every transaction that
// changed the document, local or remote (Yjs's "update" event).
func (d *Doc) OnUpdate(fn func(update []byte, txn *Transaction)) {
	d.updateFns = append(d.updateFns, fn)
}

// OnAfterTransaction registers fn to run after each transaction; use
// txn.ChangedPaths to learn what changed.
func (d *Doc) OnAfterTransaction(fn func(txn *Transaction)) {
	d.afterTxnFns = append(d.afterTxnFns, fn)
}

// HasPending reports whether structs or deletions are waiting for missing
// dependencies.
func (d *Doc) HasPending() bool {
	for _, refs := range d.store.pending {
		if len(refs) > 0 {
			return true
		}
	}
	for _, rs := range d.store.pendingDs {
		if len(rs) > 0 {
			return true
		}
	}
	return false
}
