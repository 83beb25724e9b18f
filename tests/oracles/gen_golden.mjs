// Generates the notebook golden vectors in sidecar/yjs/testdata/notebook/
// with @jupyter/ydoc (pinned in package.json), the library JupyterLab uses.
//
//   node tests/oracles/gen_golden.mjs sidecar/yjs/testdata/notebook
//
// Each step writes NN-name.update.hex (the v1 update the step emitted) and
// NN-name.json (Yjs toJSON of the roots "state", "meta" and "cells" after
// applying steps 1..NN, keys sorted). The Go test applies the updates in
// order and compares after each step. full.update.hex is the final full state.
import { YNotebook } from '@jupyter/ydoc'
import * as Y from 'yjs'
import * as fs from 'node:fs'
import * as path from 'node:path'

const out = process.argv[2]
if (!out) throw new Error('usage: gen_golden.mjs OUTDIR')
fs.mkdirSync(out, { recursive: true })

const sortKeys = (v) => {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k])
    return o
  }
  return v
}

const nb = new YNotebook({})
nb.ydoc.clientID = 4242 // deterministic bytes
let last = null
nb.ydoc.on('update', (u) => { last = last ? Y.mergeUpdates([last, u]) : u })

const rootsJSON = () => sortKeys({
  state: nb.ydoc.getMap('state').toJSON(),
  meta: nb.ydoc.getMap('meta').toJSON(),
  cells: nb.ydoc.getArray('cells').toJSON()
})

let n = 0
const step = (name, fn) => {
  last = null
  fn()
  if (!last) throw new Error('step ' + name + ' emitted no update')
  n++
  const base = path.join(out, String(n).padStart(2, '0') + '-' + name)
  fs.writeFileSync(base + '.update.hex', Buffer.from(last).toString('hex') + '\n')
  fs.writeFileSync(base + '.json', JSON.stringify(rootsJSON(), null, 1) + '\n')
}

step('create-notebook-2-cells', () => {
  // fromJSON is how a notebook is loaded into a room.
  nb.fromJSON({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' }, language_info: { name: 'python' } },
    cells: [
      { id: 'cell-a', cell_type: 'code', source: 'print("héllo 😀")', metadata: { tags: ['x'] }, outputs: [], execution_count: null },
      { id: 'cell-b', cell_type: 'markdown', source: '# Title\n', metadata: {} }
    ]
  })
})
step('insert-cell', () => {
  nb.insertCell(1, { id: 'cell-c', cell_type: 'code', source: 'x = 1\nx', metadata: {}, outputs: [], execution_count: null })
})
step('edit-source', () => {
  nb.getCell(1).updateSource(4, 5, '42')
})
step('set-execution-count', () => {
  nb.getCell(1).execution_count = 3
})
step('add-stream-output', () => {
  nb.getCell(0).setOutputs([{ output_type: 'stream', name: 'stdout', text: 'héllo 😀\n' }])
})
step('append-stream-text', () => {
  nb.getCell(0).appendStreamOutput(0, 'more text\n')
})
step('add-execute-result', () => {
  nb.getCell(1).setOutputs([{ output_type: 'execute_result', execution_count: 3, data: { 'text/plain': '42' }, metadata: {} }])
})
step('delete-cell', () => {
  nb.deleteCell(2)
})
fs.writeFileSync(path.join(out, 'full.update.hex'), Buffer.from(Y.encodeStateAsUpdate(nb.ydoc)).toString('hex') + '\n')
fs.writeFileSync(path.join(out, 'full.json'), JSON.stringify(rootsJSON(), null, 1) + '\n')
console.log('wrote', n, 'steps to', out)
process.exit(0) // YNotebook keeps timers alive
