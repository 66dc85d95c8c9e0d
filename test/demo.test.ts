// The demo's comparison: herd's time beside parallel scp's (measured, or N × one copy, labelled as such) and one copy's.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { comparisonLines, oneCopySeconds } from '../scripts/demo-summary.js'

const base = { hosts: 8, sizeMiB: 200, rateMbit: 100, herd: { seconds: 25.8, verified: 8 } }

test('one copy over one link: size over rate', () => {
  assert.equal(oneCopySeconds(base).toFixed(1), '16.8')
})

test('with parallel scp measured: its time, labelled measured, and how many times herd\'s it took', () => {
  const lines = comparisonLines({ ...base, scp: { seconds: 141.0, verified: 8 } })
  assert.match(lines[0]!, /200 MiB to 8 hosts, every link 100 Mbit\/s/)
  assert.match(lines[1]!, /herd +25\.8 s +8\/8 copies verified/)
  assert.match(lines[2]!, /parallel scp \(measured\) +141\.0 s +one scp per host, all at once, 8\/8 copies verified: 5\.5× herd's time/)
  assert.match(lines[3]!, /one copy over one link +16\.8 s/)
})

test('without the measurement: N × one copy, labelled as not measured', () => {
  const lines = comparisonLines(base)
  assert.match(lines[2]!, /parallel scp \(8 × one copy\) +134\.2 s +not measured \(DEMO_SCP=0\); at least this, since the runner's link carries every copy: 5\.2× herd's time/)
})
