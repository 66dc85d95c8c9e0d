// What the README states about herd, held to the code and to its own benchmark table.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { partialPathFor } from '../src/agent/destination.js'
import { loadAgentBundle } from '../src/core/agent-bundle.js'
import { resolveHost } from '../src/core/ssh/config.js'
import { repoRoot } from './support/herd.js'

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')

test('the temporary file is named as the README says: .NAME.herd-<first 16 hex digits of the SHA-256>.part', () => {
  assert.match(readme, /`\.NAME\.herd-<first 16 hex digits of the SHA-256>\.part`/)
  const sha = 'ab12'.repeat(16)
  assert.equal(partialPathFor('/srv/models/model.bin', sha), `/srv/models/.model.bin.herd-${sha.slice(0, 16)}.part`)
})

test('the agent crosses SSH gzipped, about 30 KB per host, as the README and the benchmark notes say', () => {
  const said = [...readme.matchAll(/the gzipped agent, about (\d+) KB per host/g)].map((m) => Number(m[1]))
  assert.ok(said.length > 0, 'the README states the size')
  const kb = loadAgentBundle().gzipped.length / 1000
  for (const n of said) assert.ok(kb > n / 2 && kb < n * 2, `the README says about ${n} KB; the agent is ${kb.toFixed(1)} KB gzipped (dist/agent)`)
})

test('--user beats User in the ssh config and loses to user@host, as the README says', () => {
  assert.match(readme, /`--user NAME` \| remote user for hosts written without `user@`; it beats `User` in `~\/\.ssh\/config`/)
  const dir = fs.mkdtempSync(path.join(repoRoot, 'build', 'readme-'))
  try {
    const configPath = path.join(dir, 'config')
    fs.writeFileSync(configPath, 'Host web-1\n  User ubuntu\n')
    const opts = { configPath, systemConfigPath: null, defaultUser: 'deploy', homeDir: dir, env: {}, localUser: 'ci' }
    assert.equal(resolveHost({ host: 'web-1' }, opts).user, 'deploy')
    assert.equal(resolveHost({ host: 'web-1', user: 'root' }, opts).user, 'root')
    assert.equal(resolveHost({ host: 'web-1' }, { ...opts, defaultUser: undefined }).user, 'ubuntu')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the opening sentence\'s figures are those of the README\'s own benchmark table', () => {
  const claim = /200 MiB to 4 servers on 100 Mbit\/s links took ([\d.]+)× one\s+copy's time and to 16 servers ([\d.]+)×, against ([\d.]+)× and ([\d.]+)× for parallel scp/.exec(readme)
  assert.ok(claim, 'the opening sentence gives the figures')
  const row = (n: number) => {
    const cells = new RegExp(`^\\| fleet \\| ${n} \\| 100 Mbit/s \\| 200 MiB \\|(.*)$`, 'm').exec(readme)![1]!.split('|').map((c) => c.trim())
    const [bound, , herd, parallelScp] = cells.map(Number) as [number, number, number, number]
    return { herd: herd / bound, scp: parallelScp / bound }
  }
  const [four, sixteen] = [row(4), row(16)]
  assert.deepEqual(claim.slice(1).map(Number), [four.herd, sixteen.herd, four.scp, sixteen.scp].map((x) => Number(x.toFixed(1))))
})
