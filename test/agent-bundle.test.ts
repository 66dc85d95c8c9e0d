// The bootstrap that starts the agent on a host: under sh and under csh/tcsh (what sshd runs the command
// with is the login's shell), only with the expected bytes, unpacking the uploaded .gz when needed.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { test } from 'node:test'
import { BOOTSTRAP } from '../src/core/agent-bundle.js'
import { shellCommand } from '../src/core/ssh/quote.js'

const tcsh = spawnSync('sh', ['-c', 'command -v tcsh'], { encoding: 'utf8' }).stdout.trim()

test('the bootstrap is one line without `!`, which csh and tcsh expand even inside single quotes', () => {
  assert.doesNotMatch(BOOTSTRAP, /[!\n\r]/)
})

for (const shell of ['/bin/sh', tcsh || 'tcsh']) {
  test(`under ${path.basename(shell)} -c (as sshd runs a command): runs the agent with the right hash, unpacks the .gz, refuses other bytes`, { skip: shell === 'tcsh' ? 'tcsh not found (scripts/setup.sh installs it)' : false }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-bootstrap-'))
    try {
      const agent = Buffer.from("process.stdout.write('agent ran with ' + process.argv.slice(1).length + ' arguments\\n')\n")
      const sha = crypto.createHash('sha256').update(agent).digest('hex')
      const start = (hash: string) => spawnSync(shell, ['-c', shellCommand([process.execPath, '-e', BOOTSTRAP, 'agent-x.mjs', hash])], { cwd: dir, encoding: 'utf8', timeout: 30_000 })

      fs.writeFileSync(path.join(dir, 'agent-x.mjs.gz'), zlib.gzipSync(agent))
      const unpacked = start(sha)
      assert.equal(unpacked.stderr, '')
      assert.equal(unpacked.stdout, 'agent ran with 2 arguments\n')
      assert.equal(unpacked.status, 0)
      assert.deepEqual(fs.readdirSync(dir), ['agent-x.mjs'], 'unpacked in place, the .gz removed')

      const again = start(sha)
      assert.equal(again.stdout, 'agent ran with 2 arguments\n', again.stderr)

      fs.writeFileSync(path.join(dir, 'agent-x.mjs'), "process.stdout.write('planted\\n')\n")
      const planted = start(sha)
      assert.equal(planted.status, 97, planted.stderr)
      assert.equal(planted.stdout, '', 'a file of other bytes never runs')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}
