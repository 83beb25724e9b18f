// Yjs side of BenchmarkCRDTVersusYjs (tests/bench/crdt_test.go).
//
//   node --expose-gc tests/oracles/bench_yjs.mjs <dir> [reps]
//
// <dir> holds base.bin (full-state v1 update of a YNotebook), updates.bin
// (uint32le length + v1 update, repeated) and midsv.bin (an encoded state
// vector). Measures, with the median of reps runs: load (apply base.bin to a
// fresh doc), apply every incremental update one by one, and
// encodeStateAsUpdate(doc, midsv); then heapUsed growth after global.gc()
// with the doc alive, after load and after the updates. Prints the figures as
// JSON on stdout and writes the final document ({meta, cells}) to
// <dir>/node_final.json.
import * as Y from 'yjs'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

if (typeof global.gc !== 'function') {
  console.error('run node with --expose-gc')
  process.exit(2)
}
const dir = process.argv[2]
const reps = Number(process.argv[3] || 5)
if (!dir) {
  console.error('usage: node --expose-gc bench_yjs.mjs <dir> [reps]')
  process.exit(2)
}

const u8 = (buf) => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
const base = u8(readFileSync(join(dir, 'base.bin')))
const midSV = u8(readFileSync(join(dir, 'midsv.bin')))
const all = readFileSync(join(dir, 'updates.bin'))
const updates = []
for (let off = 0; off < all.length;) {
  const n = all.readUInt32LE(off)
  off += 4
  updates.push(u8(all.subarray(off, off + n)))
  off += n
}

const now = () => Number(process.hrtime.bigint()) / 1e6
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const load = () => { const d = new Y.Doc(); Y.applyUpdate(d, base); return d }
const applyAll = (d) => { for (const u of updates) Y.applyUpdate(d, u) }

const tLoad = []; const tApply = []; const tDiff = []
let doc
for (let i = 0; i < reps; i++) {
  global.gc()
  let t = now()
  const d = load()
  tLoad.push(now() - t)
  t = now()
  applyAll(d)
  tApply.push(now() - t)
  doc = d
}
let diffBytes = 0
for (let i = 0; i < reps; i++) {
  const t = now()
  const diff = Y.encodeStateAsUpdate(doc, midSV)
  tDiff.push(now() - t)
  diffBytes = diff.length
}
if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) {
  console.error('Yjs doc has pending structs after all updates')
  process.exit(1)
}
writeFileSync(join(dir, 'node_final.json'), JSON.stringify({
  meta: doc.getMap('meta').toJSON(),
  cells: doc.getArray('cells').toJSON()
}))
doc = null

const heap = () => { global.gc(); global.gc(); return process.memoryUsage().heapUsed }
const before = heap()
const d = load()
const memLoad = heap() - before
applyAll(d)
const memUpdated = heap() - before
if (d.getArray('cells').length < 0) console.error('unreachable') // keep d alive

console.log(JSON.stringify({
  loadMs: median(tLoad),
  applyMs: median(tApply),
  diffMs: median(tDiff),
  diffBytes,
  memLoadBytes: memLoad,
  memUpdatedBytes: memUpdated
}))
