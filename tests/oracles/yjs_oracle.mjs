// Differential oracle for sidecar/yjs: Yjs (pinned in package.json) behind a
// line-based JSON protocol. One request per stdin line, one reply per line.
//
// Documents use three roots: "a" (Y.Array), "m" (Y.Map), "t" (Y.Text).
// Requests:
//   {"op":"apply","updates":[b64...],"sv":b64?}
//       new doc, apply the updates in order; reply {json, sv, state, pending,
//       diff?} where diff = encodeStateAsUpdate(doc, sv) when sv is given.
//   {"op":"gen","seed":n,"peers":k,"steps":s,"emoji":bool,"richText":bool}
//       seeded random session of k peers editing concurrently with partial
//       syncs (richText adds formatting marks and embeds to the text); reply {updates:[b64 of every local update, in creation order],
//       json (converged), state, sv}
//   {"op":"notebook","updates":[b64...]}
//       apply to an @jupyter/ydoc YNotebook; reply {notebook: nb.toJSON(), cellTypes}
//   {"op":"protocol","updates":[b64...],"sync":b64?,"awareness":b64?}
//       y-protocols interop, see protocol() below.
//   {"op":"history","text":s,"clients":[init,agent,person],"steps":[{origin,splices}...],
//    "undo":[origin...],"order":[i...]}
//       a sequential history between two peers: the agent's ("agent…"
//       origins) and the person's (every other origin), each step one
//       transaction on its peer, synced to the other at once. A
//       Y.UndoManager on the agent's peer tracks the "undo" origins (one
//       stack item per step) and is undone until its stack is empty, newest
//       first. Then a fresh doc receives every update (the initial text's
//       first, then each step's) in the given order. Reply {updates, now,
//       text (after the undo), stack (items before it), undoUpdates,
//       delivered, deliveredUndone (the fresh doc before and after the
//       undo's updates), pendingSeen (prefixes of the order that left
//       pending structs)}.
//   {"op":"interleave","updates":[b64...],"origins":[...],"peers":{name:[i...]},
//    "queries":[[origin...]...]}
//       a concurrent history made elsewhere (sidecar/yjs): updates[0] is
//       the initial text's, each other one a local transaction of the
//       origin at the same index. The room's document receives them in
//       the order made (each one's dependencies come before it); each of
//       peers receives them in its own order (its own updates and those
//       delivered to it, late, shuffled, duplicated). The agent's peer
//       ("agent") is replayed with each of its updates a transaction of its
//       origin, tracked by one Y.UndoManager per "agent…" origin
//       (captureTimeout 0); per query, the query's origins are undone
//       newest first. Reply {room (its text), pending (after any update),
//       diverged (the agent's peer held pending structs when it made one
//       of its changes: no undo then), peers: {name: {text, pending}},
//       deleted (per update: the [client, clock, len] ranges it deletes),
//       items (every character of the agent's text, deleted ones too, in
//       document order: [client, clock, deleted]), undo (per query: text,
//       updates, stacks (each UndoManager's items before))}.
//   {"op":"ping"}
// Canonical JSON: Uint8Array → {"$bytes": base64}.
import * as Y from 'yjs'
import { YNotebook } from '@jupyter/ydoc'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as readline from 'node:readline'

const b64 = (u8) => Buffer.from(u8).toString('base64')
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

const canon = (v) => {
  if (v instanceof Uint8Array) return { $bytes: b64(v) }
  if (Array.isArray(v)) return v.map(canon)
  if (v !== null && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}

const docJSON = (doc) => canon({
  a: doc.getArray('a').toJSON(),
  m: doc.getMap('m').toJSON(),
  t: doc.getText('t').toString()
})

// mulberry32: small seeded PRNG so sessions are reproducible.
const rng = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gen ({ seed, peers = 3, steps = 60, emoji = true, richText = false }) {
  const r = rng(seed)
  const int = (n) => Math.floor(r() * n)
  const pick = (xs) => xs[int(xs.length)]
  const chars = emoji ? ['a', 'b', 'c', ' ', '\n', 'é', '中', '😀', '👍🏽'] : ['a', 'b', 'c', ' ', '\n', 'é']
  const str = () => { let s = ''; const n = 1 + int(4); for (let i = 0; i < n; i++) s += pick(chars); return s }
  const anyVal = (depth = 0) => {
    switch (int(depth > 1 ? 7 : 9)) {
      case 0: return int(1000) - 500
      case 1: return r() * 100
      case 2: return str()
      case 3: return r() < 0.5
      case 4: return null
      case 5: return 2 ** 40 + int(1000)
      case 6: return new Uint8Array([int(256), int(256)])
      case 7: return { x: anyVal(depth + 1), y: str() }
      default: return [anyVal(depth + 1), anyVal(depth + 1)]
    }
  }
  const newType = () => {
    switch (int(3)) {
      case 0: { const t = new Y.Text(); t.insert(0, str()); return t }
      case 1: {
        const m = new Y.Map()
        m.set('source', new Y.Text(str()))
        m.set('n', int(10))
        if (r() < 0.5) m.set('outputs', Y.Array.from([anyVal()]))
        return m
      }
      default: return Y.Array.from([anyVal(), anyVal()])
    }
  }
  const docs = []
  const updates = []
  for (let i = 0; i < peers; i++) {
    const d = new Y.Doc()
    d.clientID = 1 + int(1 << 30) // distinct, varied IDs (ties broken by ID)
    d.on('update', (u, origin) => { if (origin !== 'sync') updates.push(u) })
    docs.push(d)
  }
  // All shared types reachable in a doc, with their kind.
  const collect = (doc) => {
    const out = [doc.getArray('a'), doc.getMap('m'), doc.getText('t')]
    const walk = (v) => {
      if (v instanceof Y.Array) { out.push(v); v.toArray().forEach(walk) } else if (v instanceof Y.Map) { out.push(v); for (const x of v.values()) walk(x) } else if (v instanceof Y.Text) out.push(v)
    }
    doc.getArray('a').toArray().forEach(walk)
    for (const x of doc.getMap('m').values()) walk(x)
    return out
  }
  const edit = (doc) => {
    const types = collect(doc)
    const ty = r() < 0.6 ? types[int(3)] : pick(types)
    if (ty instanceof Y.Text) {
      const len = ty.length
      const x = r()
      if (len > 0 && x < 0.35) {
        const i = int(len); ty.delete(i, 1 + int(Math.min(4, len - i)))
      } else if (richText && x < 0.42) {
        // Rich text: formatting marks and embeds (not countable / countable).
        const k = int(3)
        if (k === 0) ty.insert(int(len + 1), str(), { bold: r() < 0.5 ? true : null })
        else if (k === 1 && len > 0) { const i = int(len); ty.format(i, 1 + int(Math.min(3, len - i)), { italic: r() < 0.5 ? true : null }) } else ty.insertEmbed(int(len + 1), { img: str() })
      } else ty.insert(int(len + 1), str())
    } else if (ty instanceof Y.Array) {
      const len = ty.length
      if (len > 0 && r() < 0.3) {
        const i = int(len); ty.delete(i, 1 + int(Math.min(3, len - i)))
      } else {
        const vals = []
        const n = 1 + int(3)
        for (let k = 0; k < n; k++) vals.push(r() < 0.3 ? newType() : anyVal())
        ty.insert(int(len + 1), vals)
      }
    } else if (ty instanceof Y.Map) {
      const key = 'k' + int(5)
      const x = r()
      if (x < 0.2) ty.delete(key)
      else if (x < 0.45) ty.set(key, newType())
      else ty.set(key, anyVal())
    }
  }
  for (let s = 0; s < steps; s++) {
    const x = r()
    if (x < 0.2) {
      const a = pick(docs); const b = pick(docs)
      if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)), 'sync')
    } else {
      const d = pick(docs)
      d.transact(() => { const n = 1 + (r() < 0.2 ? int(3) : 0); for (let k = 0; k < n; k++) edit(d) })
    }
  }
  // Converge everyone. Formatting cleanup after remote changes can create new
  // local changes, so repeat until the state vectors agree.
  for (let pass = 0; pass < 10; pass++) {
    for (const a of docs) for (const b of docs) if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)), 'sync')
    const sv = Buffer.from(Y.encodeStateVector(docs[0])).toString('hex')
    if (docs.every(d => Buffer.from(Y.encodeStateVector(d)).toString('hex') === sv)) break
  }
  const j = JSON.stringify(docJSON(docs[0]))
  for (const d of docs) if (JSON.stringify(docJSON(d)) !== j) throw new Error('oracle peers diverged for seed ' + seed + ': ' + JSON.stringify(docJSON(d)) + ' vs ' + j)
  return { updates: updates.map(b64), json: docJSON(docs[0]), state: b64(Y.encodeStateAsUpdate(docs[0])), sv: b64(Y.encodeStateVector(docs[0])) }
}

function apply ({ updates, sv }) {
  const doc = new Y.Doc()
  for (const u of updates) Y.applyUpdate(doc, unb64(u))
  const out = {
    json: docJSON(doc),
    sv: b64(Y.encodeStateVector(doc)),
    state: b64(Y.encodeStateAsUpdate(doc)),
    pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null
  }
  if (sv !== undefined) out.diff = b64(Y.encodeStateAsUpdate(doc, unb64(sv)))
  return out
}

// The notebook as JupyterLab's shared model (@jupyter/ydoc YNotebook) reads
// it after applying the updates: checks that Go writes the YNotebook schema.
function notebook ({ updates }) {
  const nb = new YNotebook({})
  try {
    for (const u of updates) Y.applyUpdate(nb.ydoc, unb64(u))
    return { notebook: sortKeysDeep(nb.toJSON()), cellTypes: nb.cells.map(c => c.cell_type) }
  } finally {
    nb.dispose()
  }
}

const sortKeysDeep = (v) => {
  if (Array.isArray(v)) return v.map(sortKeysDeep)
  if (v !== null && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = sortKeysDeep(v[k])
    return o
  }
  return v
}

// y-protocols interop. The JS peer holds the given updates. It reads the Go
// peer's sync message (step1 or step2/update) and awareness update, and
// answers with its own SyncStep1, its reply to Go's step1 (if any), and an
// awareness update carrying its own state.
function protocol ({ updates = [], sync, awareness }) {
  const doc = new Y.Doc()
  doc.clientID = 777
  for (const u of updates) Y.applyUpdate(doc, unb64(u))
  const aw = new awarenessProtocol.Awareness(doc)
  try {
    const out = {}
    if (sync) {
      const dec = decoding.createDecoder(unb64(sync))
      const enc = encoding.createEncoder()
      decoding.readVarUint(dec) // message type 0 (sync)
      encoding.writeVarUint(enc, 0)
      syncProtocol.readSyncMessage(dec, enc, doc, 'go')
      if (encoding.length(enc) > 1) out.reply = b64(encoding.toUint8Array(enc))
    }
    if (awareness) {
      const dec = decoding.createDecoder(unb64(awareness))
      decoding.readVarUint(dec) // message type 1 (awareness)
      awarenessProtocol.applyAwarenessUpdate(aw, decoding.readVarUint8Array(dec), 'go')
      out.states = {}
      aw.getStates().forEach((v, k) => { if (k !== doc.clientID) out.states[k] = v })
    }
    aw.setLocalState({ user: { name: 'js <peer>' } })
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 1)
    encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(aw, [doc.clientID]))
    out.awareness = b64(encoding.toUint8Array(enc))
    const s1 = encoding.createEncoder()
    encoding.writeVarUint(s1, 0)
    syncProtocol.writeSyncStep1(s1, doc)
    out.step1 = b64(encoding.toUint8Array(s1))
    out.json = docJSON(doc)
    return out
  } finally {
    aw.destroy()
  }
}

// history: the oracle of sidecar/changes.Undo over several agent changes
// interleaved with a person's edits, delivered in any order.
function history ({ text, clients, steps, undo, order }) {
  const [initID, agentID, personID] = clients
  const init = new Y.Doc(); init.clientID = initID
  const agent = new Y.Doc(); agent.clientID = agentID
  const person = new Y.Doc(); person.clientID = personID
  const updates = []
  const run = (doc, origin, fn) => {
    const got = []
    const h = (u, o) => { if (o === origin) got.push(u) }
    doc.on('update', h)
    doc.transact(fn, origin)
    doc.off('update', h)
    const u = got.length ? Y.mergeUpdates(got) : null
    if (u) for (const d of [init, agent, person]) if (d !== doc) Y.applyUpdate(d, u, 'sync')
    return u
  }
  const at = (doc) => doc.getText('t')
  updates.push(run(init, 'init', () => at(init).insert(0, text)))
  const um = new Y.UndoManager(at(agent), { trackedOrigins: new Set(undo), captureTimeout: 0 })
  for (const { origin, splices } of steps) {
    const doc = origin.startsWith('agent') ? agent : person
    const u = run(doc, origin, () => {
      for (const s of splices) {
        if (s.delete > 0) at(doc).delete(s.index, s.delete)
        if (s.insert) at(doc).insert(s.index, s.insert)
      }
    })
    if (u === null) throw new Error('step ' + origin + ' changed nothing')
    updates.push(u)
  }
  const now = at(agent).toString()
  if (at(person).toString() !== now) throw new Error('peers diverged')
  const stack = um.undoStack.length
  const undoUpdates = []
  const h = (u) => undoUpdates.push(u)
  agent.on('update', h)
  while (um.undoStack.length > 0) um.undo()
  agent.off('update', h)
  const fresh = new Y.Doc()
  let pendingSeen = 0
  for (const i of order) {
    Y.applyUpdate(fresh, updates[i])
    if (fresh.store.pendingStructs !== null || fresh.store.pendingDs !== null) pendingSeen++
  }
  const delivered = fresh.getText('t').toString()
  const stillPending = fresh.store.pendingStructs !== null || fresh.store.pendingDs !== null
  for (const u of undoUpdates) Y.applyUpdate(fresh, u)
  return {
    updates: updates.map(b64),
    now,
    text: at(agent).toString(),
    stack,
    undoUpdates: undoUpdates.map(b64),
    delivered,
    deliveredUndone: fresh.getText('t').toString(),
    pendingSeen,
    stillPending
  }
}

// interleave: the oracle of sidecar/changes.Undo on concurrent histories.
function interleave ({ updates, origins, peers, queries }) {
  const us = updates.map(unb64)
  // The agent's peer as Yjs: its own updates as transactions of their
  // origins, each tracked by the UndoManager of its origin.
  const agent = (undo) => {
    const doc = new Y.Doc()
    const ums = {}
    for (const o of origins) {
      if (o.startsWith('agent') && !ums[o]) ums[o] = new Y.UndoManager(doc.getText('t'), { trackedOrigins: new Set([o]), captureTimeout: 0 })
    }
    let diverged = false
    for (const i of peers.agent) {
      const pending = doc.store.pendingStructs !== null || doc.store.pendingDs !== null
      if (origins[i].startsWith('agent') && pending) diverged = true
      Y.applyUpdate(doc, us[i], origins[i])
    }
    if (undo === undefined) return { doc, diverged }
    const stacks = undo.map(o => ums[o] ? ums[o].undoStack.length : 0)
    const undoUpdates = []
    const h = (u) => undoUpdates.push(b64(u))
    doc.on('update', h)
    for (const o of [...undo].reverse()) if (ums[o]) ums[o].undo()
    doc.off('update', h)
    return { text: doc.getText('t').toString(), updates: undoUpdates, stacks }
  }
  const room = new Y.Doc()
  let pending = false
  for (const u of us) {
    Y.applyUpdate(room, u)
    pending = pending || room.store.pendingStructs !== null || room.store.pendingDs !== null
  }
  const { doc, diverged } = agent()
  const items = []
  for (let it = doc.getText('t')._start; it !== null; it = it.right) {
    for (let k = 0; k < it.length; k++) items.push([it.id.client, it.id.clock + k, it.deleted ? 1 : 0])
  }
  const deleted = us.map(u => {
    const out = []
    Y.decodeUpdate(u).ds.clients.forEach((ranges, client) => { for (const r of ranges) out.push([client, r.clock, r.len]) })
    return out
  })
  const replicas = {}
  for (const [name, order] of Object.entries(peers)) {
    const d = new Y.Doc()
    for (const i of order) Y.applyUpdate(d, us[i])
    replicas[name] = { text: d.getText('t').toString(), pending: d.store.pendingStructs !== null || d.store.pendingDs !== null }
  }
  return { room: room.getText('t').toString(), pending, diverged, peers: replicas, deleted, items, undo: diverged ? [] : queries.map(agent) }
}

const handlers = { gen, history, interleave, apply, notebook, protocol, ping: () => ({ pong: true, yjs: true }) }

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  if (!line.trim()) return
  let reply
  try {
    const req = JSON.parse(line)
    const h = handlers[req.op]
    if (!h) throw new Error('unknown op ' + req.op)
    reply = h(req)
  } catch (e) {
    reply = { error: String(e && e.stack ? e.stack : e) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
})
