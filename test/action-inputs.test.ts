// The Action's inputs are read without side effects (as actions/checkout's input helper reads them); the
// run masks the secrets and writes its private files.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import ssh2 from 'ssh2'
import { getInputs } from '../src/action/inputs.js'
import { maskSecrets, writeRunFiles } from '../src/action/run-files.js'

let dir: string
const saved = { ...process.env }

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-action-inputs-'))
})

after(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
  Object.assign(process.env, saved)
  fs.rmSync(dir, { recursive: true, force: true })
})

test('getInputs only reads: no file in RUNNER_TEMP, no state saved, nothing printed; the run then masks, writes 0600 and saves its folder', (t) => {
  const key = ssh2.utils.generateKeyPairSync('ed25519').private
  const temp = path.join(dir, 'runner-temp')
  const state = path.join(dir, 'state')
  fs.mkdirSync(temp)
  fs.writeFileSync(state, '')
  Object.assign(process.env, {
    'INPUT_FILE': 'model.bin',
    'INPUT_DESTINATION': '/srv/model.bin',
    'INPUT_HOSTS': 'web-1\nweb-2',
    'INPUT_SSH-KEY': key.replace(/\n/g, '\r\n'),
    'INPUT_SSH-KNOWN-HOSTS': 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE',
    RUNNER_TEMP: temp,
    GITHUB_STATE: state,
  })
  const printed = t.mock.method(process.stdout, 'write')
  const settings = getInputs()
  assert.deepEqual(getInputs(), settings, 'reading twice reads the same')
  assert.equal(printed.mock.callCount(), 0, 'nothing printed (no mask, no state command)')
  t.mock.restoreAll()
  assert.deepEqual(fs.readdirSync(temp), [], 'nothing written')
  assert.equal(fs.readFileSync(state, 'utf8'), '', 'no state saved')
  assert.equal(settings.sshKey, key.trim() + '\n', 'the key as ssh reads it')
  assert.equal(settings.logDir, undefined)

  const masks: string[] = []
  t.mock.method(process.stdout, 'write', (chunk: string) => {
    masks.push(chunk)
    return true
  })
  maskSecrets(settings)
  t.mock.restoreAll()
  const bodyLines = key.split('\n').filter((l) => l.length >= 8 && !l.startsWith('-----'))
  for (const line of bodyLines) assert.ok(masks.includes(`::add-mask::${line}${os.EOL}`), 'every key line masked')

  const files = writeRunFiles(settings)
  assert.ok(files.secretsDir.startsWith(temp + path.sep))
  assert.equal(fs.statSync(files.secretsDir).mode & 0o777, 0o700)
  assert.equal(fs.statSync(files.sshKeyPath!).mode & 0o777, 0o600)
  assert.equal(fs.readFileSync(files.sshKeyPath!, 'utf8'), settings.sshKey)
  assert.equal(fs.readFileSync(files.knownHostsPath!, 'utf8'), 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE\n')
  assert.equal(files.reportPath, path.join(files.logDir, 'report.json'))
  assert.match(fs.readFileSync(state, 'utf8'), new RegExp(`^secrets-dir<<.*\\n${files.secretsDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`))
})
