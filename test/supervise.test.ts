// The front ends' supervisor (src/core/supervise.ts) on real processes: a work process that hangs after its
// report is ended with its reported code, each signal reaches the work exactly once, and the work stops
// when its supervisor is killed.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, test } from 'node:test'
import { pathToFileURL } from 'node:url'

const here = path.dirname(new URL(import.meta.url).pathname)
const exitJs = pathToFileURL(path.join(here, '../src/core/exit.js')).href
const superviseJs = pathToFileURL(path.join(here, '../src/core/supervise.js')).href
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-supervise-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))
const started: ChildProcess[] = []
afterEach(() => {
  for (const c of started.splice(0)) if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(-c.pid, 'SIGKILL')
})

/** Writes an entry that supervises `body` (a work script with exit.js imported) and starts it in its own process group. */
function start(name: string, body: string): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  fs.writeFileSync(path.join(work, `${name}-work.mjs`), `import { heard, leave, stopWithSupervisor, RELAYED_SIGNALS } from '${exitJs}'\n${body}\n`)
  fs.writeFileSync(path.join(work, `${name}.mjs`), `import { supervise } from '${superviseJs}'\nsupervise('./${name}-work.mjs', import.meta.url, 'herd')\n`)
  const child = spawn(process.execPath, [path.join(work, `${name}.mjs`)], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  started.push(child)
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (err += d))
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  return { child, out: () => out, err: () => err, exit }
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

// A work process that counts the signals it gets, says so, and ends 3 s after the first with that count as its code.
const counting = `
let got = 0
for (const sig of RELAYED_SIGNALS) process.on(sig, () => {
  heard(sig)
  if (got++ === 0) setTimeout(() => leave(10 + got), 3000)
})
stopWithSupervisor()
console.log('ready ' + process.pid)
setInterval(() => {}, 1000)
`

test('a work process that does not exit after its report is ended, and the exit code it reported stands', { timeout: 30_000 }, async () => {
  // What node 24's shutdown deadlock looks like from outside: the work is done and reported, the process stays.
  const run = start('hang', `process.send({ done: 3 })\nsetInterval(() => {}, 1000)\n`)
  const began = Date.now()
  assert.equal(await run.exit, 3, run.err())
  assert.match(run.err(), /node did not exit 10 s after the work ended \(nodejs\/node#54918\); ended it, the result stands/)
  assert.ok(Date.now() - began < 20_000, `took ${Date.now() - began} ms`)
})

test('the exit code of a work process passes through, and a work process killed by a signal gives 128 + its number', { timeout: 30_000 }, async () => {
  assert.equal(await start('code', `leave(7)`).exit, 7)
  assert.equal(await start('killed', `process.kill(process.pid, 'SIGKILL')`).exit, 137)
})

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} to the process group (a terminal's Ctrl-C) reaches the work once, as does ${sig} to the supervisor alone`, { timeout: 30_000 }, async () => {
    const group = start(`group-${sig}`, counting)
    await until('the work to start', () => group.out().startsWith('ready'))
    process.kill(-group.child.pid!, sig)
    assert.equal(await group.exit, 11, `the work got ${sig} more than once\n${group.err()}`)

    const alone = start(`alone-${sig}`, counting)
    await until('the work to start', () => alone.out().startsWith('ready'))
    process.kill(alone.child.pid!, sig)
    assert.equal(await alone.exit, 11, `the work did not get ${sig} exactly once\n${alone.err()}`)
  })
}

test('two Ctrl-C a second apart reach the work twice (again to quit at once)', { timeout: 30_000 }, async () => {
  const run = start('twice', counting)
  await until('the work to start', () => run.out().startsWith('ready'))
  process.kill(-run.child.pid!, 'SIGINT')
  await new Promise((r) => setTimeout(r, 1200))
  process.kill(-run.child.pid!, 'SIGINT')
  assert.equal(await run.exit, 12, run.err())
})

test('a supervisor killed outright takes the work with it: the work stops as on SIGTERM', { timeout: 30_000 }, async () => {
  const run = start('orphan', counting)
  await until('the work to start', () => run.out().startsWith('ready'))
  const workPid = Number(run.out().split(/\s+/)[1])
  process.kill(run.child.pid!, 'SIGKILL')
  await until('the work to exit', () => {
    try {
      process.kill(workPid, 0)
      return false
    } catch {
      return true
    }
  })
})
