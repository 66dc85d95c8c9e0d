// The front ends' supervisor (src/core/supervise.ts) on real processes: a work process whose exit hangs is
// ended with the code it was exiting with, each signal reaches the work exactly once (also while its event
// loop is busy), and the work stops when its supervisor is killed.
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
const pids: number[] = []
afterEach(() => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
})

interface Started {
  child: ChildProcess
  out: () => string
  err: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The work process's PID, once it has printed `ready PID`. */
  ready: () => Promise<number>
}

/** Writes an entry that supervises `body` (a work script with exit.js imported) and starts it in its own process group. */
function start(name: string, body: string, args: string[] = []): Started {
  fs.writeFileSync(path.join(work, `${name}-work.mjs`), `import { leave, onStopSignal, reportToSupervisor } from '${exitJs}'\nreportToSupervisor()\n${body}\n`)
  fs.writeFileSync(path.join(work, `${name}.mjs`), `import { supervise } from '${superviseJs}'\nsupervise('./${name}-work.mjs', import.meta.url, 'herd')\n`)
  const child = spawn(process.execPath, [path.join(work, `${name}.mjs`), ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  pids.push(child.pid!)
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (err += d))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const ready = async () => {
    await until('the work to start', () => /^ready \d+/.test(out))
    const pid = Number(out.split(/\s+/)[1])
    pids.push(pid)
    return pid
  }
  return { child, out: () => out, err: () => err, exit, ready }
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// A work process that counts the signals it gets and ends 3 s after the first with 10 + that count as its
// code; with the argument `busy`, its event loop is blocked for 2.5 s right after it says it is ready.
const counting = `
let got = 0
onStopSignal(() => {
  if (got++ === 0) setTimeout(() => leave(10 + got), 3000)
})
console.log('ready ' + process.pid)
if (process.argv[2] === 'busy') for (const end = Date.now() + 2500; Date.now() < end; );
setInterval(() => {}, 1000)
`

test('a work process whose exit hangs is ended, and the code it was exiting with stands', { timeout: 30_000 }, async () => {
  // What node 24's shutdown deadlock looks like from outside: process.exit(3) called, the process stays.
  const run = start('hang', `process.on('exit', () => { for (;;); })\nprocess.exit(3)\n`)
  const began = Date.now()
  assert.deepEqual(await run.exit, { code: 3, signal: null }, run.err())
  assert.match(run.err(), /node did not exit 10 s after the work ended \(nodejs\/node#54918\); ended it, the result stands/)
  assert.ok(Date.now() - began < 20_000, `took ${Date.now() - began} ms`)
})

test('the exit code of a work process passes through; a work process killed by a signal leaves the supervisor killed by it too', { timeout: 30_000 }, async () => {
  assert.deepEqual(await start('code', `leave(7)`).exit, { code: 7, signal: null })
  assert.deepEqual(await start('crash', `throw new Error('boom')`).exit, { code: 1, signal: null })
  assert.deepEqual(await start('killed', `process.kill(process.pid, 'SIGKILL')`).exit, { code: null, signal: 'SIGKILL' })
})

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} to the process group (a terminal's Ctrl-C), to the supervisor alone, or while the work is busy reaches the work once`, { timeout: 60_000 }, async () => {
    for (const [how, args] of [['group', []], ['alone', []], ['busy', ['busy']]] as const) {
      const run = start(`${how}-${sig}`, counting, [...args])
      await run.ready()
      process.kill(how === 'alone' ? run.child.pid! : -run.child.pid!, sig)
      assert.deepEqual(await run.exit, { code: 11, signal: null }, `${how}: the work did not get ${sig} exactly once\n${run.err()}`)
    }
  })
}

test('two Ctrl-C a second apart reach the work twice (again to quit at once)', { timeout: 30_000 }, async () => {
  const run = start('twice', counting)
  await run.ready()
  process.kill(-run.child.pid!, 'SIGINT')
  await new Promise((r) => setTimeout(r, 1000))
  process.kill(-run.child.pid!, 'SIGINT')
  assert.deepEqual(await run.exit, { code: 12, signal: null }, run.err())
})

test('a supervisor killed outright takes the work with it: the work stops as on SIGTERM', { timeout: 30_000 }, async () => {
  const run = start('orphan', counting)
  const workPid = await run.ready()
  process.kill(run.child.pid!, 'SIGKILL')
  await until('the work to exit', () => !alive(workPid))
})
