// Every fix names an option of the front end in use: the one table of names against the CLI's --help and
// action.yml, and messages from the plan, the host key check and the handshake under both front ends.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import ssh2 from 'ssh2'
import { parse as parseYaml } from 'yaml'
import { allOptionNames, optionSetTo } from '../src/core/option-names.js'
import { makePlan, PlanError } from '../src/core/plan.js'
import { hostKeyVerifier } from '../src/core/ssh/host-key.js'
import { handshakeError } from '../src/core/ssh/errors.js'
import type { ResolvedHost } from '../src/core/ssh/config.js'
import { repoRoot } from './support/herd.js'

test('every CLI name is in herd --help, every Action name is an input of action.yml', () => {
  const help = spawnSync(process.execPath, [path.join(repoRoot, 'build', 'src', 'cli', 'index.js'), '--help'], { encoding: 'utf8' }).stdout
  assert.match(help, /^Usage: herd/)
  for (const name of allOptionNames('cli')) {
    const words = (t: string) => t.toLowerCase().replace(/[-_]/g, ' ')
    const shown = name.startsWith('-') ? help.includes(name) : words(help).includes(words(name))
    assert.ok(shown, `${name} is not in herd --help`)
  }
  const inputs = Object.keys((parseYaml(fs.readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as { inputs: object }).inputs)
  for (const name of allOptionNames('action')) assert.ok(inputs.includes(name.split(':')[0]!), `${name} is not an input of action.yml`)
  assert.equal(optionSetTo('runnerVia', 'ssh', 'cli'), '--runner-via ssh')
  assert.equal(optionSetTo('runnerVia', 'ssh', 'action'), 'runner-via: ssh')
})

test('no message names an option that exists in no front end', () => {
  const sources = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []))
  for (const file of sources(path.join(repoRoot, 'src'))) {
    const text = fs.readFileSync(file, 'utf8')
    assert.doesNotMatch(text, /the accept-new host key option|the connect timeout option|\(passphrase option\)/, path.relative(repoRoot, file))
  }
})

test('the plan names the flag or the input of the front end in use', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-names-'))
  try {
    const file = path.join(dir, 'f.bin')
    fs.writeFileSync(file, 'x')
    const mistake = (frontEnd: 'cli' | 'action', extra: object) => {
      try {
        makePlan({ file, destination: '/srv/f.bin', hostList: 'a', frontEnd, ...extra })
      } catch (err) {
        assert.ok(err instanceof PlanError, String(err))
        return err.message
      }
      assert.fail('no PlanError')
    }
    assert.match(mistake('cli', { port: 'x' }), /^--port: 'x' is not a port/)
    assert.match(mistake('action', { port: 'x' }), /^port: 'x' is not a port/)
    assert.match(mistake('cli', { stallTimeout: '1' }), /^--stall-timeout: '1' is not a whole number from 5 up/)
    assert.match(mistake('action', { stallTimeout: '1' }), /^stall-timeout: /)
    assert.match(mistake('action', { postBatch: '2' }), /^post-batch: needs post-command;/)
    assert.match(mistake('cli', { postBatch: '2' }), /^--post-batch: needs --post-command;/)
    assert.match(mistake('action', { destination: 'srv/x' }), /^destination: 'srv\/x' is not an absolute path/)
    assert.match(mistake('cli', { destination: 'srv/x' }), /^remote file: 'srv\/x' is not an absolute path/)
    assert.match(mistake('action', { identityFiles: [path.join(dir, 'none')] }), /^ssh-key: identity .* does not exist/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('an unknown host key and a handshake timeout: the fixes name what the user can set', () => {
  const key = Buffer.from(ssh2.utils.generateKeyPairSync('ed25519').public.split(' ')[1]!, 'base64')
  const r = { hostname: 'web-1', port: 22, userKnownHostsFiles: [], globalKnownHostsFiles: [] } as unknown as ResolvedHost
  for (const [frontEnd, fix] of [['cli', '--accept-new-host-keys'], ['action', 'ssh-strict: false']] as const) {
    const check = hostKeyVerifier('web-1', r, 'strict', () => {}, frontEnd)
    assert.equal(check.verify(key), false)
    assert.match(check.refused()!.message, new RegExp(`^web-1: host key for web-1 is not known .*; check that fingerprint .* or let herd add it on first use \\(${fix}\\)$`))
  }
  const timeout = handshakeError(Object.assign(new Error('Timed out'), { level: 'client-timeout' }), { who: 'web-1', host: 'web-1', port: 22, timeoutMs: 15_000, auth: { started: () => false, failure: () => assert.fail() } })
  assert.match(timeout.message, /timed out after 15 s .*\(ConnectTimeout in the ssh config sets this limit\)$/)
})
