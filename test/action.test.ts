// The GitHub Action as the runner runs it: a copy of dist/ (no node_modules), INPUT_* variables, file commands
// (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY), RUNNER_TEMP, and a local artifact service; real sshd hosts.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { after, before, describe, test } from 'node:test'
import ssh2 from 'ssh2'
import { parse as parseYaml } from 'yaml'
import { canRunCluster, run, startCluster, type Cluster, type RunResult } from './support/cluster.js'
import { randomFile, repoRoot } from './support/herd.js'
import { readArtifacts, readZip, startArtifactServer, type StoredArtifact } from './support/artifact-server.js'
import type { Report } from '../src/core/report.js'

const MiB = 1024 * 1024
/** The core's defaults, read from its source: importing plan.js unbundled fails on ssh2's CommonJS named export. */
const DEFAULTS = Function(
  `return (${/export const DEFAULTS = (\{[^}]*\})/.exec(fs.readFileSync(path.join(repoRoot, 'src', 'core', 'plan.ts'), 'utf8'))![1]})`,
)() as { retry: number; port: string; remotePath: string; concurrency: number }
const can = canRunCluster()
const hasKeygen = spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' }).error === undefined
/** Tracker ports for these tests, away from the default so another run on the machine does not collide. */
const PORTS = '28998-29098'
/** A key for steps whose hosts refuse connections: without any key the step stops before touching a host. */
const throwawayKey = ssh2.utils.generateKeyPairSync('ed25519').private

let work: string
/** A copy of dist/ with no node_modules anywhere above it: what a fresh clone runs. */
let actionDir: string
let mainJs: string
let postJs: string

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-action-test-'))
  actionDir = path.join(work, 'action')
  fs.cpSync(path.join(repoRoot, 'dist'), path.join(actionDir, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(repoRoot, 'action.yml'), path.join(actionDir, 'action.yml'))
  mainJs = path.join(actionDir, 'dist', 'action', 'main.js')
  postJs = path.join(actionDir, 'dist', 'action', 'post.js')
})

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// The runner's side of the protocol

/** One step's environment and file commands, as the runner prepares them. */
interface Step {
  dir: string
  env: NodeJS.ProcessEnv
  outputFile: string
  stateFile: string
  summaryFile: string
  runnerTemp: string
}

let stepCounter = 0

/** INPUT_<NAME>: upper case, spaces to underscores, dashes kept (what the runner does). */
function inputVar(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/** A fresh step: nothing inherited from a CI job's own GITHUB_ and ACTIONS_ variables. */
function makeStep(inputs: Record<string, string>, extra: Record<string, string> = {}): Step {
  const dir = path.join(work, `step-${++stepCounter}`)
  const runnerTemp = path.join(dir, 'runner-temp')
  fs.mkdirSync(runnerTemp, { recursive: true })
  const files = { outputFile: path.join(dir, 'output'), stateFile: path.join(dir, 'state'), summaryFile: path.join(dir, 'summary') }
  for (const f of Object.values(files)) fs.writeFileSync(f, '')
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(INPUT_|STATE_|GITHUB_|ACTIONS_|RUNNER_)/.test(k)) env[k] = v
  delete env.SSH_AUTH_SOCK
  delete env.SSH_AGENT_PID
  delete env.NODE_TEST_CONTEXT // the action is not a test
  Object.assign(env, {
    HOME: path.join(dir, 'home'),
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: work,
    GITHUB_JOB: 'push',
    GITHUB_OUTPUT: files.outputFile,
    GITHUB_STATE: files.stateFile,
    GITHUB_STEP_SUMMARY: files.summaryFile,
    RUNNER_TEMP: runnerTemp,
  })
  fs.mkdirSync(env.HOME!, { mode: 0o700 })
  for (const [name, value] of Object.entries(inputs)) env[inputVar(name)] = value
  Object.assign(env, extra)
  return { dir, env, runnerTemp, ...files }
}

/** Parses a file command file (GITHUB_OUTPUT, GITHUB_STATE): `name<<DELIM\nvalue\nDELIM` or `name=value`. */
function readFileCommands(file: string): Record<string, string> {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const out: Record<string, string> = {}
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^=<]+)<<(.+)$/.exec(lines[i]!)
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1)
      assert.ok(end > i, `unterminated value for ${heredoc[1]} in ${file}`)
      out[heredoc[1]!] = lines.slice(i + 1, end).join('\n')
      i = end
    } else if (lines[i]!.includes('=')) {
      const at = lines[i]!.indexOf('=')
      out[lines[i]!.slice(0, at)] = lines[i]!.slice(at + 1)
    }
  }
  return out
}

/** The post step's environment: the main step's, plus STATE_<name> for everything it saved. */
function postEnv(step: Step): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...step.env }
  for (const [k, v] of Object.entries(readFileCommands(step.stateFile))) env[`STATE_${k}`] = v
  return env
}

/** Workflow commands of one kind (`error`, `warning`) with their properties, from a step's stdout. */
function commands(stdout: string, kind: string): { props: string; message: string }[] {
  const unescape = (s: string) => s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%3A/g, ':').replace(/%2C/g, ',').replace(/%25/g, '%')
  return stdout
    .split('\n')
    .map((line) => new RegExp(`^::${kind}( [^:]*)?::(.*)$`).exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ props: unescape(m[1] ?? ''), message: unescape(m[2]!) }))
}

function runLocally(script: string, step: Step, env = step.env, timeoutMs = 60_000): Promise<RunResult> {
  return run('node', [script], { env, cwd: work, timeoutMs })
}

function show(r: RunResult): string {
  return `exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
}

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function readReport(outputs: Record<string, string>): Report {
  assert.ok(outputs.report, 'report output')
  return JSON.parse(fs.readFileSync(outputs.report, 'utf8')) as Report
}

function keygen(file: string, passphrase = ''): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'herd-action-test', '-f', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return fs.readFileSync(file, 'utf8')
}

/** Folders named `ssh` (the key's private folder) left anywhere under a step's RUNNER_TEMP. */
function secretDirsLeft(step: Step): string[] {
  return fs.readdirSync(step.runnerTemp).map((d) => path.join(step.runnerTemp, d, 'ssh')).filter((d) => fs.existsSync(d))
}

// ---------------------------------------------------------------------------------------------
// action.yml against the code

describe('action.yml', () => {
  test('declares node24 with main and post in dist/, and exactly the inputs and outputs the code uses', () => {
    const yml = parseYaml(fs.readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as {
      inputs: Record<string, { description: string; default?: string; required?: boolean }>
      outputs: Record<string, { description: string }>
      runs: { using: string; main: string; post: string }
      branding: { icon: string; color: string }
    }
    assert.equal(yml.runs.using, 'node24')
    assert.ok(fs.existsSync(path.join(repoRoot, yml.runs.main)), yml.runs.main)
    assert.ok(fs.existsSync(path.join(repoRoot, yml.runs.post)), yml.runs.post)
    assert.ok(yml.branding.icon && yml.branding.color)
    const source = fs
      .readdirSync(path.join(repoRoot, 'src', 'action'))
      .map((f) => fs.readFileSync(path.join(repoRoot, 'src', 'action', f), 'utf8'))
      .join('\n')
    const read = new Set([...source.matchAll(/(?:getInput|booleanInput)\('([a-z-]+)'/g)].map((m) => m[1]!))
    const set = new Set([...source.matchAll(/setOutput\('([a-z-]+)'/g)].map((m) => m[1]!))
    assert.deepEqual([...read].sort(), Object.keys(yml.inputs).sort(), 'inputs read by src/action vs declared in action.yml')
    assert.deepEqual([...set].sort(), Object.keys(yml.outputs).sort(), 'outputs set by src/action vs declared in action.yml')
    for (const [name, input] of Object.entries(yml.inputs)) assert.ok(input.description?.length > 10, `${name} has a description`)
    // Defaults the core also applies must agree with it.
    assert.equal(yml.inputs.retry!.default, String(DEFAULTS.retry))
    assert.equal(yml.inputs.port!.default, DEFAULTS.port)
    assert.equal(yml.inputs['remote-path']!.default, DEFAULTS.remotePath)
    assert.equal(yml.inputs.concurrency!.default, String(DEFAULTS.concurrency))
    assert.equal(yml.inputs['ssh-strict']!.default, 'true')
    assert.equal(yml.inputs['upload-logs']!.default, 'on-failure')
  })
})

// ---------------------------------------------------------------------------------------------
// Without hosts: input mistakes, a host that refuses, the artifact, the post step

describe('the action without a cluster', () => {
  let file: string
  before(() => {
    file = randomFile(work, 'small.bin', 256 * 1024).path
  })

  test('an input mistake fails the step with one line naming the input, before any host is touched', { timeout: 60_000 }, async () => {
    const keyDir = fs.mkdtempSync(path.join(work, 'keys-'))
    const encrypted = hasKeygen ? keygen(path.join(keyDir, 'enc'), 'correct horse') : undefined
    const badHosts = path.join(work, 'bad-hosts.txt')
    fs.writeFileSync(badHosts, '# fleet\nweb-1\nweb 2\n')
    const cases: { inputs: Record<string, string>; error: RegExp }[] = [
      { inputs: { destination: '/srv/x.bin', hosts: badHosts }, error: new RegExp(`^hosts: ${badHosts}: line 3: 'web 2' contains white space`) },
      { inputs: { destination: 'srv/x.bin', hosts: 'a' }, error: /^destination: 'srv\/x\.bin' is not an absolute path/ },
      { inputs: { destination: '/srv/x.bin' }, error: /^hosts: required/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'deploy/hosts.txt' }, error: /^hosts: deploy\/hosts\.txt is not a file/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a\nb c' }, error: /^hosts: .*white space/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', retry: 'twice' }, error: /^retry: 'twice' is not a whole number/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'limit-rate': '5X' }, error: /^limit-rate: '5X' is not a rate; give bytes per second/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'upload-logs': 'sometimes' }, error: /^upload-logs: 'sometimes' is not one of on-failure, always, never/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'ssh-strict': 'maybe' }, error: /^ssh-strict: 'maybe' is not true or false/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'artifact-name': 'logs/today' }, error: /^artifact-name: / },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'artifact-retention-days': '365' }, error: /^artifact-retention-days: '365' is not a whole number from 1 to 90/ },
      // No key anywhere (empty HOME, no agent): the step says which input gives one.
      { inputs: { destination: '/srv/x.bin', hosts: 'a' }, error: /^ssh-key: no SSH key to offer: ssh-key is empty, and the runner has no ssh-agent.*; give the private key from a secret \(ssh-key: \$\{\{ secrets\.DEPLOY_KEY \}\}\)$/ },
      { inputs: { destination: '/srv/x.bin', hosts: 'a', 'ssh-key': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEX' }, error: /^ssh-key: / },
      ...(encrypted
        ? [
            { inputs: { destination: '/srv/x.bin', hosts: 'a', 'ssh-key': encrypted }, error: /^ssh-key: the key is encrypted; set ssh-key-passphrase/ },
            { inputs: { destination: '/srv/x.bin', hosts: 'a', 'ssh-key': encrypted, 'ssh-key-passphrase': 'wrong' }, error: /^ssh-key-passphrase: does not decrypt ssh-key/ },
          ]
        : []),
    ]
    for (const c of cases) {
      const step = makeStep({ file, ...c.inputs })
      const r = await runLocally(mainJs, step)
      const what = JSON.stringify(c.inputs).slice(0, 120)
      assert.equal(r.code, 1, `${what}: ${show(r)}`)
      const errors = commands(r.stdout, 'error')
      assert.equal(errors.length, 1, `${what}: one error\n${show(r)}`)
      assert.match(errors[0]!.message, c.error, what)
      assert.ok(!errors[0]!.message.includes('\n'), `${what}: one line`)
      assert.deepEqual(readFileCommands(step.outputFile), {}, `${what}: no outputs`)
      assert.doesNotMatch(r.stdout, /connecting/, `${what}: no host touched`)
      assert.deepEqual(secretDirsLeft(step), [], `${what}: no key left on disk`)
      if (c.inputs['ssh-key']?.includes('PRIVATE KEY')) {
        const body = c.inputs['ssh-key'].split('\n').filter((l) => l.length >= 8 && !l.startsWith('-----'))
        for (const line of r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'))) {
          for (const secret of body) assert.ok(!line.includes(secret), `${what}: a key line reached the log`)
        }
      }
    }
  })

  test('a host that refuses connections: exit 1, failed output, error annotation, summary row, its log in the artifact', { timeout: 90_000 }, async () => {
    const server = await startArtifactServer({ dir: path.join(work, 'artifacts-local') })
    try {
      const down = `127.0.0.1:${await closedPort()}`
      const step = makeStep(
        { file, destination: '/srv/x.bin', hosts: down, port: PORTS, 'ssh-key': throwawayKey, 'artifact-name': 'herd-logs-local', 'artifact-retention-days': '3' },
        server.env(),
      )
      const r = await runLocally(mainJs, step)
      assert.equal(r.code, 1, show(r))
      const outputs = readFileCommands(step.outputFile)
      assert.deepEqual(JSON.parse(outputs.failed!), [down])
      assert.deepEqual(JSON.parse(outputs.succeeded!), [])
      assert.equal(outputs['bytes-from-runner'], '0')
      assert.match(outputs['duration-seconds']!, /^\d+\.\d$/)
      assert.equal(outputs['artifact-id'], '1')
      const report = readReport(outputs)
      assert.equal(report.hosts[0]!.kind, 'connect')

      const errors = commands(r.stdout, 'error')
      const perHost = errors.find((e) => e.props.includes(down))
      assert.ok(perHost, `an annotation titled with ${down}\n${show(r)}`)
      assert.match(perHost.message, /refused/)
      assert.match(errors.at(-1)!.message, new RegExp(`^1 of 1 host failed: ${down}`))
      assert.match(r.stdout, /::group::log of 127\.0\.0\.1/)

      const summary = fs.readFileSync(step.summaryFile, 'utf8')
      assert.match(summary, /<table>/)
      assert.match(summary, new RegExp(`<code>${down}</code></td><td>❌ failed \\(connect\\)`))
      assert.match(summary, /artifact herd-logs-local/)

      const [artifact] = server.artifacts()
      assert.ok(artifact?.finalized, `artifact finalized: ${server.requests.join(', ')}`)
      assert.equal(artifact.name, 'herd-logs-local')
      assert.equal(artifact.mimeType, 'application/zip')
      assert.ok(artifact.expiresAt && Date.parse(artifact.expiresAt) > Date.now() + 2 * 86400_000, 'retention days sent')
      const zip = readZip(artifact.zipPath!)
      assert.deepEqual([...zip.keys()].sort(), [path.basename(report.hosts[0]!.logFile!), 'report.json'].sort())
      assert.match(zip.get(path.basename(report.hosts[0]!.logFile!))!.toString('utf8'), /refused/)
      assert.deepEqual(JSON.parse(zip.get('report.json')!.toString('utf8')).failed, [down])
    } finally {
      await server.close()
    }
  })

  test('a failed artifact upload is a warning, never the cause of the step failing', { timeout: 90_000 }, async () => {
    const server = await startArtifactServer({ dir: path.join(work, 'artifacts-refusing'), refuseCreate: true })
    try {
      const down = `127.0.0.1:${await closedPort()}`
      const step = makeStep({ file, destination: '/srv/x.bin', hosts: down, port: PORTS, 'ssh-key': throwawayKey, 'upload-logs': 'always' }, server.env())
      const r = await runLocally(mainJs, step)
      assert.equal(r.code, 1, show(r))
      const warnings = commands(r.stdout, 'warning')
      assert.ok(warnings.some((w) => /host logs not uploaded as artifact herd-logs-push: .*refused by this test server/.test(w.message)), show(r))
      assert.match(commands(r.stdout, 'error').at(-1)!.message, /^1 of 1 host failed/)
      assert.match(fs.readFileSync(step.summaryFile, 'utf8'), /logs: on the runner in /)
      assert.equal(readFileCommands(step.outputFile)['artifact-id'], undefined)
    } finally {
      await server.close()
    }
  })

  test('hosts as a one-line list; upload-logs never, or no artifact service at all: nothing uploaded, the logs stay on the runner', { timeout: 60_000 }, async () => {
    const server = await startArtifactServer({ dir: path.join(work, 'artifacts-never') })
    try {
      const down = `127.0.0.1:${await closedPort()}`
      const alsoDown = `127.0.0.1:${await closedPort()}`
      const never = makeStep({ file, destination: '/srv/x.bin', hosts: `${down}, ${alsoDown}`, port: PORTS, 'ssh-key': throwawayKey, 'upload-logs': 'never', 'log-dir': path.join(work, 'never-logs') }, server.env())
      const r1 = await runLocally(mainJs, never)
      assert.equal(r1.code, 1, show(r1))
      assert.deepEqual(JSON.parse(readFileCommands(never.outputFile).failed!), [down, alsoDown], 'a one-line list separated by commas')
      assert.deepEqual(server.artifacts(), [])
      assert.equal(readFileCommands(never.outputFile).report, path.join(work, 'never-logs', 'report.json'))
      assert.ok(fs.existsSync(path.join(work, 'never-logs', `127.0.0.1_${down.split(':')[1]}.log`)))
      const noService = makeStep({ file, destination: '/srv/x.bin', hosts: down, port: PORTS, 'ssh-key': throwawayKey })
      const r2 = await runLocally(mainJs, noService)
      assert.equal(r2.code, 1, show(r2))
      assert.ok(commands(r2.stdout, 'warning').some((w) => /ACTIONS_RUNTIME_TOKEN/.test(w.message)), show(r2))
    } finally {
      await server.close()
    }
  })

  test('the post step stops a main step that is still running and removes the key', { skip: hasKeygen ? false : 'needs ssh-keygen', timeout: 90_000 }, async () => {
    // A host that refuses, retried until success (-1), keeps the main step going until it is stopped.
    const host = `127.0.0.1:${await closedPort()}`
    const key = keygen(path.join(fs.mkdtempSync(path.join(work, 'keys-')), 'id'))
    const step = makeStep({ file, destination: '/srv/x.bin', hosts: host, port: PORTS, retry: '-1', 'ssh-key': key, 'upload-logs': 'never' })
    const main = spawn('node', [mainJs], { env: step.env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] })
    try {
      let stdout = ''
      main.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
      main.stderr!.on('data', (d: Buffer) => (stdout += d.toString()))
      const exited = new Promise<number | null>((resolve) => main.once('exit', (code) => resolve(code)))
      // Wait until the main step is retrying the host, with its key on disk.
      const deadline = Date.now() + 20_000
      while (!/: retrying: /.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      assert.match(stdout, /: retrying: /, stdout)
      const state = readFileCommands(step.stateFile)
      // The step's process supervises the work (src/core/supervise.ts): the saved PID is the work's, its child.
      const workPid = state['main-pid']!
      assert.equal(fs.readFileSync(`/proc/${workPid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1], String(main.pid))
      const keyFile = path.join(state['secrets-dir']!, 'id_key')
      assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'key file mode')
      assert.equal(fs.statSync(state['secrets-dir']!).mode & 0o777, 0o700, 'key folder mode')
      assert.ok(state['secrets-dir']!.startsWith(step.runnerTemp + path.sep), 'key inside RUNNER_TEMP')
      assert.equal(fs.readFileSync(keyFile, 'utf8'), key)

      const began = Date.now()
      const post = await runLocally(postJs, step, postEnv(step), 40_000)
      assert.equal(post.code, 0, show(post))
      assert.match(post.stdout, new RegExp(`main step \\(pid ${workPid}\\) is still running; stopping it`))
      assert.doesNotMatch(post.stdout, /ignored SIGTERM/, 'stopped by SIGTERM, not killed')
      assert.ok(Date.now() - began < 10_000, `the main step took ${Date.now() - began} ms to stop`)
      assert.equal(await exited, 1, `main step exit after SIGTERM\n${stdout}`)
      assert.match(stdout, /SIGTERM: stopping/)
      assert.ok(commands(stdout, 'error').some((e) => /^interrupted by SIGTERM/.test(e.message)), stdout)
      assert.deepEqual(JSON.parse(readFileCommands(step.outputFile).failed!), [host], 'outputs still set')
      assert.equal(fs.existsSync(keyFile), false, 'key removed')
      assert.deepEqual(secretDirsLeft(step), [])

      // A second post step (or one after a main step that ended by itself) has nothing to stop.
      const again = await runLocally(postJs, step, postEnv(step))
      assert.equal(again.code, 0, show(again))
      assert.match(again.stdout, /the main step has ended; nothing to stop/)
    } finally {
      if (main.exitCode === null && main.signalCode === null) main.kill('SIGKILL')
    }
  })

  test('the post step removes a key folder the main step could not (main killed outright)', { timeout: 30_000 }, async () => {
    const step = makeStep({})
    const secrets = path.join(step.runnerTemp, 'herd-action-x', 'ssh')
    fs.mkdirSync(secrets, { recursive: true, mode: 0o700 })
    fs.writeFileSync(path.join(secrets, 'id_key'), 'not really a key', { mode: 0o600 })
    const env = { ...step.env, 'STATE_main-pid': '999999999', 'STATE_main-start': '1', 'STATE_secrets-dir': secrets }
    const r = await runLocally(postJs, step, env)
    assert.equal(r.code, 0, show(r))
    assert.equal(fs.existsSync(secrets), false)
  })
})

// ---------------------------------------------------------------------------------------------
// Real hosts: 8 sshd hosts in network namespaces; the action runs in the runner's namespace

describe('the action on 8 real hosts', { skip: can.ok ? false : can.why }, () => {
  let cluster: Cluster
  let big: { path: string; sha256: string }

  before(async () => {
    cluster = await startCluster({ hosts: 8 })
    big = randomFile(work, 'model.bin', 16 * MiB, 0o640)
    fs.writeFileSync(path.join(work, 'hosts.txt'), `# the fleet\n${cluster.hosts.map((h) => h.alias).join('\n')}\n`)
  })

  after(async () => {
    await cluster?.destroy()
  })

  /** The action's main step in the runner namespace; HOME is the cluster's (ssh config aliases, key, known_hosts) unless given. */
  function runMain(step: Step, timeoutMs = 120_000): Promise<RunResult> {
    return cluster.runInRunner(['node', mainJs], { env: step.env, cwd: work, timeoutMs })
  }

  /** An artifact server inside the runner namespace (its loopback is not the test's). */
  async function artifactServerInRunner(dir: string): Promise<{ env: Record<string, string>; artifacts(): StoredArtifact[]; stop(): void }> {
    const serverJs = path.join(repoRoot, 'build', 'test', 'support', 'artifact-server.js')
    const child = cluster.spawnInRunner(['node', serverJs, dir, '127.0.0.1'], { env: process.env })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const first = await Promise.race([
      new Promise<string>((resolve) => readline.createInterface({ input: child.stdout! }).once('line', resolve)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`artifact server did not start: ${stderr}`)), 10_000)),
    ])
    const { url, token } = JSON.parse(first) as { url: string; token: string }
    return {
      env: { ACTIONS_RESULTS_URL: url, ACTIONS_RUNTIME_TOKEN: token },
      artifacts: () => readArtifacts(dir),
      stop: () => {
        child.stdin!.end() // the server leaves when its standard input closes
        try {
          if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGTERM')
        } catch {
          // already gone
        }
      },
    }
  }

  async function assertNothingLeftRunning(): Promise<void> {
    for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  }

  test('pushes to 8 hosts named in a hosts file: succeeded has all 8, a row per host in the summary, exit 0', { timeout: 180_000 }, async () => {
    const server = await artifactServerInRunner(path.join(work, 'artifacts-ok'))
    try {
      const step = makeStep({ file: 'model.bin', destination: '/srv/model.bin', hosts: 'hosts.txt', port: PORTS }, { ...server.env, HOME: cluster.home })
      const r = await runMain(step)
      assert.equal(r.code, 0, show(r))
      const outputs = readFileCommands(step.outputFile)
      const aliases = cluster.hosts.map((h) => h.alias)
      assert.deepEqual(JSON.parse(outputs.succeeded!), aliases)
      assert.deepEqual(JSON.parse(outputs.failed!), [])
      assert.ok(Number(outputs['bytes-from-runner']) > 0, 'the runner uploaded something')
      assert.ok(Number(outputs['duration-seconds']) > 0)
      const report = readReport(outputs)
      assert.equal(report.sha256, big.sha256)
      assert.ok(outputs.report!.startsWith(step.runnerTemp + path.sep), 'report in RUNNER_TEMP by default')
      assert.deepEqual(commands(r.stdout, 'error'), [])
      const summary = fs.readFileSync(step.summaryFile, 'utf8')
      for (const alias of aliases) assert.match(summary, new RegExp(`<tr><td><code>${alias}</code></td><td>✅ ok</td><td>1</td>`), `${alias} row`)
      assert.match(summary, /<b>Total<\/b><\/td><td><b>8 ok, 0 failed<\/b>/)
      assert.match(summary, /all 8 hosts have \/srv\/model\.bin/)
      for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, '/srv/model.bin'), big.sha256, `${h.alias}: sha256`)
      assert.deepEqual(server.artifacts(), [], 'no artifact when every host succeeded (upload-logs on-failure)')
      await assertNothingLeftRunning()
    } finally {
      server.stop()
    }
  })

  test('one host down: exit 1, named in failed and in an error annotation, its log uploaded as an artifact', { timeout: 180_000 }, async () => {
    const down = cluster.hosts[5]!
    const server = await artifactServerInRunner(path.join(work, 'artifacts-down'))
    await cluster.stopSshd(down)
    try {
      const step = makeStep(
        { file: big.path, destination: '/srv/down.bin', hosts: 'hosts.txt', port: PORTS, 'artifact-name': 'fleet-logs', 'artifact-retention-days': '5' },
        { ...server.env, HOME: cluster.home },
      )
      const r = await runMain(step)
      assert.equal(r.code, 1, show(r))
      const outputs = readFileCommands(step.outputFile)
      assert.deepEqual(JSON.parse(outputs.failed!), [down.alias])
      assert.deepEqual(JSON.parse(outputs.succeeded!), cluster.hosts.filter((h) => h !== down).map((h) => h.alias))
      const errors = commands(r.stdout, 'error')
      const annotation = errors.find((e) => e.props.includes(`title=herd: ${down.alias} failed`))
      assert.ok(annotation, `annotation for ${down.alias}\n${show(r)}`)
      assert.match(annotation.message, new RegExp(`${down.alias}.*refused`))
      assert.match(errors.at(-1)!.message, new RegExp(`^1 of 8 hosts failed: ${down.alias}; 7 have /srv/down\\.bin`))
      const summary = fs.readFileSync(step.summaryFile, 'utf8')
      assert.match(summary, new RegExp(`<tr><td><code>${down.alias}</code></td><td>❌ failed \\(connect\\)</td>.*refused`))
      assert.match(summary, /7 ok, 1 failed/)
      assert.match(summary, /logs: artifact fleet-logs/)

      const artifacts = server.artifacts()
      assert.equal(artifacts.length, 1, JSON.stringify(artifacts))
      assert.ok(artifacts[0]!.finalized)
      assert.equal(artifacts[0]!.name, 'fleet-logs')
      assert.equal(outputs['artifact-id'], String(artifacts[0]!.id))
      const zip = readZip(artifacts[0]!.zipPath!)
      assert.deepEqual([...zip.keys()].sort(), [`${down.alias}.log`, 'report.json'], 'only the failed host log and the report')
      assert.match(zip.get(`${down.alias}.log`)!.toString('utf8'), /refused/)
      for (const h of cluster.hosts.filter((x) => x !== down)) assert.equal(await cluster.sha256On(h, '/srv/down.bin'), big.sha256, h.alias)
      assert.equal(await cluster.sha256On(down, '/srv/down.bin'), null)
    } finally {
      server.stop()
      await cluster.startSshd(down)
    }
    await assertNothingLeftRunning()
  })

  test('ssh-key and ssh-known-hosts inputs alone (empty HOME): the key is masked, 0600, and gone after the post step', { timeout: 180_000 }, async () => {
    const key = fs.readFileSync(cluster.identityPath, 'utf8')
    const knownHosts = fs.readFileSync(cluster.knownHostsPath, 'utf8')
    const hosts = cluster.hosts.slice(0, 3)
    const step = makeStep({
      file: big.path,
      destination: '/srv/keyed.bin',
      hosts: hosts.map((h) => `${h.address}`).join('\n') + '\n',
      username: 'root',
      port: PORTS,
      'ssh-key': key,
      'ssh-known-hosts': knownHosts,
    })
    assert.deepEqual(fs.readdirSync(step.env.HOME!), [], 'HOME is empty: no ssh config, key or known_hosts')
    const r = await runMain(step)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(JSON.parse(readFileCommands(step.outputFile).succeeded!), hosts.map((h) => h.address))
    for (const h of hosts) assert.equal(await cluster.sha256On(h, '/srv/keyed.bin'), big.sha256, h.alias)
    const keyLines = key.split('\n').filter((l) => l.length >= 8 && !l.startsWith('-----'))
    const masked = new Set(r.stdout.split('\n').filter((l) => l.startsWith('::add-mask::')).map((l) => l.slice('::add-mask::'.length)))
    for (const line of keyLines) assert.ok(masked.has(line), 'every key line is masked')
    for (const line of r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'))) {
      for (const secret of keyLines) assert.ok(!line.includes(secret), 'a key line reached the log')
    }
    const secrets = readFileCommands(step.stateFile)['secrets-dir']!
    assert.ok(secrets.startsWith(step.runnerTemp + path.sep), secrets)
    const post = await runLocally(postJs, step, postEnv(step))
    assert.equal(post.code, 0, show(post))
    assert.equal(fs.existsSync(path.join(secrets, 'id_key')), false, 'key file gone')
    assert.deepEqual(secretDirsLeft(step), [])
    await assertNothingLeftRunning()
  })

  test('ssh-strict: true refuses hosts whose key is unknown, naming the fix; false trusts them on first use', { timeout: 180_000 }, async () => {
    const key = fs.readFileSync(cluster.identityPath, 'utf8')
    const hosts = cluster.hosts.slice(6, 8)
    const inputs = { file: big.path, destination: '/srv/strict.bin', hosts: hosts.map((h) => `root@${h.address}`).join('\n'), port: PORTS, 'ssh-key': key }
    const strict = makeStep({ ...inputs, 'upload-logs': 'never' })
    const r1 = await runMain(strict)
    assert.equal(r1.code, 1, show(r1))
    const report = readReport(readFileCommands(strict.outputFile))
    for (const h of report.hosts) {
      assert.equal(h.kind, 'host-key-unknown', `${h.host}: ${h.cause}`)
      // The fix names the Action's inputs, not the runner's temporary known_hosts file.
      assert.match(h.cause!, /add the output of `ssh-keyscan [^`]+` to the ssh-known-hosts input; or trust it on first use with ssh-strict: false$/, h.cause)
    }
    const annotations = commands(r1.stdout, 'error').filter((e) => e.props.includes('title=herd: root@'))
    assert.equal(annotations.length, 2, show(r1))
    for (const h of hosts) assert.equal(await cluster.sha256On(h, '/srv/strict.bin'), null)

    const acceptNew = makeStep({ ...inputs, 'ssh-strict': 'false' })
    const r2 = await runMain(acceptNew)
    assert.equal(r2.code, 0, show(r2))
    for (const h of hosts) assert.equal(await cluster.sha256On(h, '/srv/strict.bin'), big.sha256, h.alias)
    await assertNothingLeftRunning()
  })
})
