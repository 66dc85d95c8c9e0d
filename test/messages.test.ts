// What herd says, without hosts: the CLI's run lines and summary, the Action's outcome line, and the plan's input messages.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { makeRenderer, summaryLines } from '../src/cli/render.js'
import { outcomeLine } from '../src/action/summary.js'
import { makePlan, parsePorts, PlanError, type HerdOptions } from '../src/core/plan.js'
import { count, type HostReport, type Report } from '../src/core/report.js'
import { FRONT_ENDS, fixWords } from '../src/core/front-end.js'
import { buildCommand } from '../src/cli/args.js'
import YAML from 'yaml'
import { repoRoot } from './support/herd.js'

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-messages-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))
const payload = path.join(work, 'app.bin')
fs.writeFileSync(payload, 'payload\n')
// The plan looks for keys in HOME and the agent: a HOME of the test's own with one key, no agent, an empty ssh config.
const home = path.join(work, 'home')
fs.mkdirSync(path.join(home, '.ssh'), { recursive: true })
const defaultKey = path.join(home, '.ssh', 'id_ed25519')
fs.writeFileSync(defaultKey, 'a key file (only its presence counts here)\n', { mode: 0o600 })
const sshConfig = path.join(work, 'ssh_config')
fs.writeFileSync(sshConfig, '')
process.env.HOME = home
delete process.env.SSH_AUTH_SOCK

function hostReport(host: string, status: HostReport['status'], cause?: string): HostReport {
  return { host, status, transferred: true, attempts: 1, seconds: 1, downloaded: 8, fromRunner: 4, cause }
}

function report(hosts: HostReport[]): Report {
  return {
    file: payload,
    destination: '/srv/app.bin',
    size: 8,
    sha256: 'ab'.repeat(32),
    startedAt: new Date(0).toISOString(),
    seconds: 1,
    bytesFromRunner: 8,
    runtimeBytes: 0,
    hosts,
    succeeded: hosts.filter((h) => h.status === 'ok').map((h) => h.host),
    failed: hosts.filter((h) => h.status !== 'ok').map((h) => h.host),
    exitCode: hosts.every((h) => h.status === 'ok') ? 0 : 1,
  }
}

/** The lines a run prints: events as they happen, then the summary (as the CLI does). */
function printed(quiet: boolean, r: Report, events: [string, 'failed' | 'done' | 'retrying', string?][]): string[] {
  const lines: string[] = []
  const renderer = makeRenderer({ tty: false, quiet, hosts: r.hosts.length, size: r.size, out: (l) => lines.push(l) })
  renderer.onPhase?.('hosts', count(r.hosts.length, 'host'))
  for (const [host, state, detail] of events) renderer.onHostState?.(host, state, detail)
  renderer.stop()
  return [...lines, ...summaryLines(r)]
}

test('-q prints each failure once, with its cause, and the totals', () => {
  const cause = 'could not connect: connection refused at 10.0.0.3:22; is sshd running there?'
  const r = report([hostReport('web-1', 'ok'), hostReport('web-2', 'failed', cause)])
  const quiet = printed(true, r, [
    ['web-1', 'done'],
    ['web-2', 'retrying', cause],
    ['web-2', 'failed', cause],
  ])
  assert.equal(quiet.filter((l) => l.includes('web-2')).length, 1, `one line for the failure:\n${quiet.join('\n')}`)
  assert.match(quiet.find((l) => l.includes('web-2'))!, /^FAILED web-2: could not connect/)
  assert.equal(quiet.filter((l) => l.includes('web-1')).length, 0, 'nothing about a host that is fine')
  assert.match(quiet.at(-1)!, /^1\/2 hosts have \/srv\/app\.bin/)
  // Without -q every event is a line, as a CI log wants.
  const loud = printed(false, r, [['web-2', 'failed', cause]])
  assert.ok(loud.some((l) => /web-2: failed: could not connect/.test(l)))
})

test('counts agree with their nouns: 1 host, 2 hosts', () => {
  assert.equal(count(1, 'host'), '1 host')
  assert.equal(count(0, 'host'), '0 hosts')
  assert.equal(count(2, 'host has', 'hosts have'), '2 hosts have')
  const one = printed(false, report([hostReport('web-1', 'ok')]), [['web-1', 'done']])
  assert.ok(one.some((l) => / hosts: 1 host$/.test(l)), `the hosts phase line:\n${one.join('\n')}`)
  assert.match(one.at(-1)!, /^1\/1 host has \/srv\/app\.bin /)
  assert.doesNotMatch(one.join('\n'), /\b1 hosts\b/)
  assert.equal(outcomeLine(report([hostReport('web-1', 'ok')])), 'the host has /srv/app.bin')
  assert.match(outcomeLine(report([hostReport('web-1', 'failed', 'down')])), /^1 of 1 host failed: web-1; 0 have \/srv\/app\.bin$/)
  assert.match(outcomeLine(report([hostReport('web-1', 'failed', 'down'), hostReport('web-2', 'ok')])), /^1 of 2 hosts failed: web-1; 1 has \/srv\/app\.bin$/)
})

function planError(opts: Partial<HerdOptions>): PlanError {
  try {
    makePlan({ file: payload, destination: '/srv/app.bin', hostList: 'web-1', sshConfig, ...opts })
  } catch (err) {
    if (err instanceof PlanError) return err
    throw err
  }
  assert.fail(`no PlanError for ${JSON.stringify(opts)}`)
}

test('--port: a reversed range says LOW > HIGH and the range to write', () => {
  assert.throws(() => parsePorts('9000-8000'), (err: PlanError) => err.input === '--port' && /'9000-8000' is a range with LOW > HIGH; write the lower port first: 8000-9000/.test(err.message))
  assert.throws(() => parsePorts('70000'), /'70000' is not a port \(1-65535\) or a range LOW-HIGH/)
  assert.throws(() => parsePorts('http'), /'http' is not a port/)
  assert.deepEqual(parsePorts('9000-9000'), [9000, 9000])
})

test("--node with '=' in it is a usage error (the agent starts as env NAME=VALUE... NODE)", () => {
  const err = planError({ node: '/opt/node=20/bin/node' })
  assert.equal(err.input, '--node')
  assert.match(err.message, /^--node: is empty or contains a NUL, a newline or '='; give a command or path without them$/)
})

test('--log-dir that cannot be made or written is a usage error naming --log-dir', () => {
  // A file where a folder of the path should be: root may write anywhere, but not through a file.
  const err = planError({ logDir: path.join(payload, 'logs') })
  assert.equal(err.input, '--log-dir')
  assert.match(err.message, /^--log-dir: .*app\.bin is not a folder, so .*app\.bin\/logs cannot be one; give a folder you can write to$/)
  const fileAsDir = planError({ logDir: payload })
  assert.match(fileAsDir.message, /^--log-dir: .*app\.bin is not a folder/)
  // A folder to be made two levels down is fine (herd makes it), and nothing is made by the check.
  const deep = path.join(work, 'a', 'b')
  assert.equal(makePlan({ file: payload, destination: '/srv/app.bin', hostList: 'web-1', sshConfig, logDir: deep }).logDir, deep)
  assert.equal(fs.existsSync(path.join(work, 'a')), false)
})

test('no SSH key anywhere is a usage error naming the front end\'s key input, checked after the inputs themselves', () => {
  fs.renameSync(defaultKey, `${defaultKey}.away`)
  try {
    const cli = planError({})
    assert.equal(cli.input, '--identity')
    assert.match(cli.message, /^--identity: no SSH key to offer: no -i, no ssh-agent \(SSH_AUTH_SOCK\), .*; pass -i KEY_FILE, or start ssh-agent and ssh-add your key$/)
    const gitlab = planError({ frontEnd: 'gitlab' })
    assert.equal(gitlab.input, 'SSH_PRIVATE_KEY')
    assert.match(gitlab.message, /add the deploy key as the File variable SSH_PRIVATE_KEY/)
    assert.equal(planError({ frontEnd: 'action' }).input, 'ssh-key')
    // A mistake in the inputs is still the one reported.
    assert.equal(planError({ retry: 'twice' }).input, '--retry')
    // An agent socket, a key named in the ssh config, or -i: each is a key to offer.
    const socket = path.join(work, 'agent.sock')
    fs.writeFileSync(socket, '')
    process.env.SSH_AUTH_SOCK = socket
    assert.doesNotThrow(() => makePlan({ file: payload, destination: '/srv/app.bin', hostList: 'web-1', sshConfig }))
    delete process.env.SSH_AUTH_SOCK
    const named = path.join(work, 'ssh_config_named')
    fs.writeFileSync(named, `Host web-*\n  IdentityFile ${defaultKey}.away\n`)
    assert.doesNotThrow(() => makePlan({ file: payload, destination: '/srv/app.bin', hostList: 'db-1, web-1', sshConfig: named }))
    assert.equal(planError({ hostList: 'db-1', sshConfig: named }).input, '--identity')
  } finally {
    fs.renameSync(`${defaultKey}.away`, defaultKey)
  }
})

test('every fix names a flag, input or variable that exists in its front end, and no temporary file', () => {
  const cliFlags = buildCommand('0').options.map((o) => o.long)
  const actionInputs = Object.keys((YAML.parse(fs.readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as { inputs: object }).inputs)
  const componentText = fs.readFileSync(path.join(repoRoot, 'templates', 'herd.yml'), 'utf8')
  const componentInputs = Object.keys((YAML.parseAllDocuments(componentText)[0]!.toJS() as { spec: { inputs: object } }).spec.inputs)
  const keyscan = 'ssh-keyscan -p 2222 web-1'
  const tmp = '/tmp/tmp.Xy12/known_hosts'
  for (const fe of FRONT_ENDS) {
    const w = fixWords(fe)
    const add = w.addHostKey(keyscan, tmp)
    assert.ok(add.includes(keyscan), `${fe}: the ssh-keyscan command`)
    if (fe === 'cli') {
      assert.equal(add, `run: ${keyscan} >> ${tmp}`, 'the command line user gets the file herd read')
      assert.ok(cliFlags.includes(w.acceptNew) && cliFlags.includes(w.keyInput), `${fe}: ${w.acceptNew}, ${w.keyInput} are flags`)
      continue
    }
    assert.ok(!add.includes(tmp), `${fe}: a temporary known_hosts file is no use to the user: ${add}`)
    const inputs = fe === 'action' ? actionInputs : componentInputs
    const named = [...`${add} ${w.acceptNew} ${w.giveKey}`.matchAll(/\b(ssh-[a-z-]+)\b(?: input|:)/g)].map((m) => m[1]!)
    assert.ok(named.length >= 2, `${fe}: names its inputs: ${named}`)
    for (const input of named) assert.ok(inputs.includes(input), `${fe}: ${input} is one of its inputs`)
  }
  // Options the fixes ask to change: the front end's input, its args, or nothing where it has no way.
  assert.equal(fixWords('cli').option('--remote-path'), '--remote-path')
  assert.equal(fixWords('action').option('--remote-path'), 'the remote-path input')
  assert.equal(fixWords('action').option('--node'), undefined, 'the Action has no node input')
  assert.equal(fixWords('gitlab').option('--remote-path'), 'the remote-path input')
  assert.equal(fixWords('gitlab').option('--node'), '--node in the args input')
  for (const flag of cliFlags.filter((f): f is string => !!f)) {
    const a = fixWords('action').option(flag)
    if (a) assert.ok(actionInputs.includes(/^the (\S+) input$/.exec(a)![1]!), `action: ${a}`)
    const g = fixWords('gitlab').option(flag)!
    assert.ok(g === `${flag} in the args input` || componentInputs.includes(/^the (\S+) input$/.exec(g)![1]!), `gitlab: ${g}`)
  }
  assert.match(fixWords('gitlab').addHostKey(keyscan, tmp), /SSH_KNOWN_HOSTS/)
  assert.match(componentText, /\$SSH_KNOWN_HOSTS/)
  assert.match(componentText, /\$SSH_PRIVATE_KEY/)
  assert.match(componentText, /HERD_FRONT_END: gitlab/, 'the component tells herd whose words to use')
})
