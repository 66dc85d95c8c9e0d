// The fixes of a host's failure name what the user of the front end in use can set: the built-in client's
// unknown host key and handshake timeout, and the time limit.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import ssh2 from 'ssh2'
import { hostKeyVerifier } from '../src/core/ssh/host-key.js'
import { handshakeError } from '../src/core/ssh/errors.js'
import { endedError } from '../src/core/attempt.js'
import type { ResolvedHost } from '../src/core/ssh/config.js'
import { repoRoot } from './support/herd.js'

test('no message names an option that exists in no front end', () => {
  const sources = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []))
  for (const file of sources(path.join(repoRoot, 'src'))) {
    assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /the accept-new host key option|the connect timeout option|\(passphrase option\)/, path.relative(repoRoot, file))
  }
})

test('an unknown host key: the built-in verifier names the front end\'s way to add it or trust it', () => {
  const key = Buffer.from(ssh2.utils.generateKeyPairSync('ed25519').public.split(' ')[1]!, 'base64')
  const r = { hostname: 'web-1', port: 22, userKnownHostsFiles: ['/home/ci/.ssh/known_hosts'], globalKnownHostsFiles: [] } as unknown as ResolvedHost
  const fixes = {
    cli: /then run: ssh-keyscan web-1 >> \/home\/ci\/\.ssh\/known_hosts; or trust it on first use with --accept-new-host-keys$/,
    action: /then add the output of `ssh-keyscan web-1` to the ssh-known-hosts input; or trust it on first use with ssh-strict: false$/,
    gitlab: /SSH_KNOWN_HOSTS.*; or trust it on first use with the input ssh-strict: false$/,
  }
  for (const [frontEnd, fix] of Object.entries(fixes) as [keyof typeof fixes, RegExp][]) {
    const check = hostKeyVerifier('web-1', r, 'strict', () => {}, frontEnd)
    assert.equal(check.verify(key), false)
    assert.match(check.refused()!.message, /^web-1: host key for web-1 is not known \(ssh-ed25519 SHA256:/)
    assert.match(check.refused()!.message, fix, frontEnd)
  }
})

test('a handshake timeout points at ConnectTimeout; the time limit is named as the front end spells it', () => {
  const timeout = handshakeError(Object.assign(new Error('Timed out'), { level: 'client-timeout' }), {
    who: 'web-1', host: 'web-1', port: 22, timeoutMs: 15_000, auth: { started: () => false, failure: () => assert.fail('not an auth failure') },
  })
  assert.match(timeout.message, /^web-1: timed out after 15 s waiting for the SSH handshake with web-1:22; .*\(ConnectTimeout in the ssh config sets the limit\)$/)
  const ended = new AbortController()
  ended.abort('timeout')
  assert.equal(endedError(ended.signal, 'cli').message, 'the time limit (--timeout) ended before this host finished')
  assert.equal(endedError(ended.signal, 'action').message, 'the time limit (the timeout input) ended before this host finished')
  assert.equal(endedError(ended.signal, 'gitlab').message, 'the time limit (--timeout in the args input) ended before this host finished')
})
