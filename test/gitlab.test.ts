// The GitLab CI/CD component (templates/herd.yml): its inputs, its artifacts, and the command its job runs, through the real CLI.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import { canRunCluster, run, startCluster, type Cluster, type RunResult } from './support/cluster.js'
import { cliPath, randomFile, repoRoot } from './support/herd.js'
import type { Report } from '../src/core/report.js'

const COMPONENT = path.join(repoRoot, 'templates', 'herd.yml')
const PACKAGE = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string }
/** `$[[ inputs.name ]]`, with or without functions (`| expand_vars`), as GitLab finds it in keys and values. */
const BLOCK = /\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*(\|[^\]]*)?\]\]/g
const INPUT_TYPES = ['string', 'number', 'boolean', 'array'] as const

interface InputSpec {
  type?: (typeof INPUT_TYPES)[number]
  default?: unknown
  description?: string
  options?: unknown[]
  regex?: string
}
type Json = string | number | boolean | null | Json[] | { [key: string]: Json }
type Job = {
  stage: string
  image: string
  variables: Record<string, unknown>
  before_script?: string[]
  script: string[]
  artifacts: { name?: string; when: string; expire_in: string; paths: string[] }
}

/** The component's two YAML documents: the spec header and the job. */
function loadComponent(): { inputs: Record<string, InputSpec>; body: Json; text: string } {
  const text = fs.readFileSync(COMPONENT, 'utf8')
  const docs = YAML.parseAllDocuments(text)
  assert.ok(Array.isArray(docs), 'parses as YAML documents')
  assert.equal(docs.length, 2, 'a spec header and the job, separated by ---')
  for (const d of docs) assert.deepEqual(d.errors.map((e) => e.message), [], 'YAML errors')
  const header = docs[0]!.toJS() as { spec?: { inputs?: Record<string, InputSpec | null> } }
  assert.deepEqual(Object.keys(header), ['spec'], 'the header holds spec only')
  const inputs: Record<string, InputSpec> = {}
  for (const [name, spec] of Object.entries(header.spec?.inputs ?? {})) inputs[name] = spec ?? {}
  return { inputs, body: docs[1]!.toJS() as Json, text }
}

/** Every input named by an interpolation block in keys or values of a node. */
function inputsUsed(node: Json, into = new Set<string>()): Set<string> {
  const scan = (s: string) => {
    for (const m of s.matchAll(BLOCK)) into.add(m[1]!)
  }
  if (typeof node === 'string') scan(node)
  else if (Array.isArray(node)) for (const n of node) inputsUsed(n, into)
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      scan(k)
      inputsUsed(v, into)
    }
  return into
}

/** Input values as GitLab settles them at pipeline creation: given or default, typed, in options, matching regex. */
function resolveInputs(spec: Record<string, InputSpec>, given: Record<string, unknown>): Record<string, unknown> {
  for (const name of Object.keys(given)) if (!(name in spec)) throw new Error(`unknown input: ${name}`)
  const values: Record<string, unknown> = {}
  for (const [name, s] of Object.entries(spec)) {
    const value = name in given ? given[name] : s.default
    if (value === undefined) throw new Error(`\`${name}\` input: required value has not been provided`)
    const type = s.type ?? 'string'
    const ok = type === 'array' ? Array.isArray(value) : typeof value === type
    if (!ok) throw new Error(`\`${name}\` input: provided value is not a ${type}`)
    if (s.options && !s.options.includes(value)) throw new Error(`\`${name}\` input: \`${String(value)}\` cannot be used because it is not in the list of allowed options`)
    if (s.regex !== undefined && !new RegExp(s.regex).test(String(value))) throw new Error(`\`${name}\` input: provided value does not match required RegEx pattern`)
    values[name] = value
  }
  return values
}

/** Replaces interpolation blocks like GitLab: a string that is one block takes the input's typed value, else text. */
function interpolate(node: Json, values: Record<string, unknown>): Json {
  const text = (s: string): string =>
    s.replace(BLOCK, (_all, name: string, fns: string | undefined) => {
      if (fns) throw new Error(`functions are not emulated here: ${fns}`)
      const v = values[name]
      if (Array.isArray(v) || (v !== null && typeof v === 'object')) throw new Error(`input ${name} is not text and cannot be part of a string`)
      return String(v)
    })
  if (typeof node === 'string') {
    const whole = /^\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]$/.exec(node)
    return whole ? (values[whole[1]!] as Json) : text(node)
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, values))
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [text(k), interpolate(v, values)]))
  return node
}

/** The single job the component defines, interpolated with the given inputs (defaults for the rest). */
function jobFor(given: Record<string, unknown>): { name: string; job: Job } {
  const { inputs, body } = loadComponent()
  const config = interpolate(body, resolveInputs(inputs, given)) as Record<string, Job>
  const names = Object.keys(config)
  assert.equal(names.length, 1, `one job, got ${names.join(', ')}`)
  return { name: names[0]!, job: config[names[0]!]! }
}

/** Job variables as the runner hands them to the script: `$VAR`/`${VAR}` expanded from the CI environment (File variables are paths). */
function expandVariables(vars: Record<string, unknown>, ciEnv: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(vars)) {
    assert.ok(typeof value === 'string' || typeof value === 'number', `variable ${name} must be text, got ${typeof value}`)
    out[name] = String(value).replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, a?: string, b?: string) =>
      all === '$$' ? '$' : ciEnv[(a ?? b)!] ?? '',
    )
  }
  return out
}

/**
 * A stand-in `npx` that records its argv, checks the package spec (`npx --yes SPEC` as the docs write it, or
 * `npx --yes --package SPEC -- herd` as the component runs it), and runs the repository's CLI in place of the npm download.
 */
function fakeNpx(dir: string, version: string, herdCli = cliPath, spec = `${PACKAGE.name}@${version}`): { bin: string; argvFile: string } {
  const bin = path.join(dir, 'fake-npx-bin')
  const argvFile = path.join(dir, 'npx-argv')
  fs.mkdirSync(bin, { recursive: true })
  fs.writeFileSync(
    path.join(bin, 'npx'),
    [
      '#!/bin/sh',
      `printf '%s\\0' "$@" > '${argvFile}'`,
      `if [ "$1" = --yes ] && [ "$2" = --package ] && [ "$4" = -- ] && [ "$5" = herd ]; then spec=$3; shift 5`,
      `elif [ "$1" = --yes ]; then spec=$2; shift 2`,
      `else echo "unexpected npx call: $*" >&2; exit 99; fi`,
      `if [ "$spec" != '${spec}' ]; then echo "unexpected package: $spec" >&2; exit 99; fi`,
      `exec '${process.execPath}' '${herdCli}' "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  )
  return { bin, argvFile }
}

function readArgv(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\0').slice(0, -1)
}

/** The job's before_script and script as the runner's shell runs them: one script, stopping at the first failure. */
function shellArgv(shell: 'sh' | 'bash', job: Job): string[] {
  const script = [...(job.before_script ?? []), ...job.script].join('\n')
  return shell === 'bash' ? ['bash', '-e', '-o', 'pipefail', '-c', script] : ['sh', '-e', '-c', script]
}

/** Environment of a job: a clean HOME, the CI variables, the job's variables, npx first on PATH. */
function jobEnv(job: Job, ciEnv: Record<string, string>, npxBin: string, home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: `${npxBin}:${process.env.PATH}`, HOME: home, LANG: 'C.UTF-8', TMPDIR: path.join(home, 'tmp') }
  fs.mkdirSync(env.TMPDIR!, { recursive: true })
  return { ...env, ...ciEnv, ...expandVariables(job.variables, ciEnv) }
}

function sshKeygen(file: string, passphrase = ''): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'gitlab-test', '-f', file], { encoding: 'utf8', timeout: 15_000 })
  assert.equal(r.status, 0, r.stderr)
}

const hasSsh = spawnSync('sh', ['-c', 'command -v ssh-keygen && command -v bash'], { timeout: 5000 }).status === 0
const hasAgent = spawnSync('sh', ['-c', 'command -v ssh-agent && command -v ssh-add'], { timeout: 5000 }).status === 0

let work: string
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-gitlab-'))
})
after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

describe('the component file', () => {
  test('parses as a spec header and one job, in the catalog layout', () => {
    assert.ok(fs.existsSync(COMPONENT), 'templates/herd.yml')
    const { inputs, body } = loadComponent()
    assert.ok(Object.keys(inputs).length > 0, 'declares inputs')
    assert.ok(body && typeof body === 'object' && !Array.isArray(body))
    assert.deepEqual(Object.keys(body), ['$[[ inputs.job-name ]]'], 'the job is named by the job-name input')
  })

  test('declares every input it needs, each typed and described, with defaults that pass their own checks', () => {
    const { inputs } = loadComponent()
    const needed = ['file', 'destination', 'hosts', 'retry', 'port', 'remote-path', 'log-dir', 'stage', 'job-name', 'herd-version', 'image', 'upload-logs', 'logs-expire-in', 'ssh-key', 'ssh-agent', 'ssh-known-hosts', 'ssh-strict']
    for (const name of needed) assert.ok(name in inputs, `input ${name} is declared`)
    for (const [name, s] of Object.entries(inputs)) {
      assert.ok(typeof s.description === 'string' && s.description.length > 10, `${name}: has a description`)
      assert.ok(s.type === undefined || INPUT_TYPES.includes(s.type), `${name}: type ${s.type} is one GitLab knows`)
      assert.deepEqual(Object.keys(s).filter((k) => !['type', 'default', 'description', 'options', 'regex'].includes(k)), [], `${name}: only keys GitLab knows`)
      if (s.default !== undefined) {
        assert.doesNotThrow(() => resolveInputs({ [name]: s }, {}), `${name}: its default passes its type, options and regex`)
      }
      if (s.regex !== undefined) assert.equal(s.type ?? 'string', 'string', `${name}: regex applies to strings only`)
      assert.equal(inputs[name]!.description!.includes('$[['), false, `${name}: no interpolation in the header`)
    }
    for (const required of ['file', 'destination', 'hosts']) assert.equal(inputs[required]!.default, undefined, `${required} has no default: it must be given`)
    assert.equal(inputs['retry']!.type, 'number')
    assert.equal(inputs['ssh-strict']!.type, 'boolean')
    assert.equal(inputs['ssh-strict']!.default, true, 'host keys are checked by default')
    assert.equal(inputs['ssh-agent']!.type, 'boolean')
  })

  test('uses every declared input in the job, and declares every input the job uses', () => {
    const { inputs, body } = loadComponent()
    const used = inputsUsed(body)
    const declared = new Set(Object.keys(inputs))
    assert.deepEqual([...declared].filter((n) => !used.has(n)).sort(), [], 'declared but never used')
    assert.deepEqual([...used].filter((n) => !declared.has(n)).sort(), [], 'used but not declared')
  })

  test('the herd version it runs by default is this package’s version', () => {
    const { inputs } = loadComponent()
    assert.equal(inputs['herd-version']!.default, PACKAGE.version, 'bump herd-version’s default with package.json')
    assert.throws(() => resolveInputs(inputs, { file: 'f', destination: '/d', hosts: 'h', 'herd-version': '1.0.0; rm -rf /' }), /RegEx/)
  })

  test('keeps the per-host logs as artifacts on failure by default, always when asked, with an expiry', () => {
    const { inputs, body } = loadComponent()
    const raw = (body as Record<string, Job>)['$[[ inputs.job-name ]]']!
    assert.equal(raw.artifacts.when, '$[[ inputs.upload-logs ]]')
    assert.equal(raw.artifacts.expire_in, '$[[ inputs.logs-expire-in ]]')
    assert.deepEqual(inputs['upload-logs']!.options, ['on_failure', 'always'])
    const base = { file: 'build.tar', destination: '/srv/build.tar', hosts: 'web-1' }
    const byDefault = jobFor(base).job.artifacts
    assert.equal(byDefault.when, 'on_failure')
    assert.equal(byDefault.expire_in, '1 week')
    assert.deepEqual(byDefault.paths, ['herd-logs/'])
    const always = jobFor({ ...base, 'upload-logs': 'always', 'logs-expire-in': '3 days', 'log-dir': 'out/herd' }).job.artifacts
    assert.equal(always.when, 'always')
    assert.equal(always.expire_in, '3 days')
    assert.deepEqual(always.paths, ['out/herd/'])
    assert.throws(() => jobFor({ ...base, 'upload-logs': 'never' }), /allowed options/)
    assert.throws(() => jobFor({ ...base, 'log-dir': '/var/log/herd' }), /RegEx/, 'artifacts must be inside the project folder')
  })

  test('interpolates into a job with the given name and stage, and only text in its variables', () => {
    const { name, job } = jobFor({ file: 'a', destination: '/srv/a', hosts: 'h', 'job-name': 'push model', stage: 'release', image: 'node:20', retry: 3, 'ssh-strict': false })
    assert.equal(name, 'push model')
    assert.equal(job.stage, 'release')
    assert.equal(job.image, 'node:20')
    for (const [k, v] of Object.entries(job.variables)) assert.equal(typeof v, 'string', `variable ${k} is text`)
    const script = job.script.join('\n')
    assert.doesNotMatch(script, /\$\[\[/, 'no interpolation block left')
    assert.match(script, /--retry "3"/)
    assert.match(script, new RegExp(`herd_package="${PACKAGE.name}@${PACKAGE.version.replace(/\./g, '\\.')}"`))
    assert.match(script, /npx --yes --package "\$herd_package" -- herd "\$@" --json/)
  })
})

describe('the command the job runs, through the real CLI', { skip: hasSsh ? false : 'needs ssh-keygen and bash' }, () => {
  const ciEnvFor = (project: string, extra: Record<string, string> = {}) => ({ CI_PROJECT_DIR: project, CI_JOB_NAME: 'herd', GITLAB_CI: 'true', ...extra })

  for (const shell of ['sh', 'bash'] as const) {
    test(`${shell}: every option is accepted, values arrive unsplit and unexpanded, secrets are cleaned up`, async () => {
      const dir = fs.mkdtempSync(path.join(work, `argv-${shell}-`))
      const project = path.join(dir, 'project')
      fs.mkdirSync(project)
      const key = path.join(dir, 'SSH_PRIVATE_KEY') // where the runner writes a File variable
      sshKeygen(key)
      const { job } = jobFor({
        file: '$CI_PROJECT_DIR/missing build.bin',
        destination: "/srv/it's a $(dest).bin",
        hosts: 'web-1, deploy@web-2:2222\n[fd00::3]:22',
        retry: 2,
        port: '9100-9110',
        'remote-path': 'work dir/herd',
        'log-dir': 'logs/herd',
        'limit-rate': '50M',
        args: '--timeout 60 --concurrency 4',
      })
      const npx = fakeNpx(dir, PACKAGE.version)
      const env = jobEnv(job, ciEnvFor(project, { SSH_PRIVATE_KEY: key, SSH_KNOWN_HOSTS: 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3oTlq0CAZRpvxQ9a4fwIjRu4kzGxW5jBOKaP4vXO7r\r\n' }), npx.bin, path.join(dir, 'home'))
      const [cmd, ...args] = shellArgv(shell, job)
      const r = await run(cmd!, args, { env, cwd: project, timeoutMs: 60_000 })
      assert.equal(r.code, 2, `exit 2 for a missing local file\n${r.stderr}`)
      assert.match(r.stderr, /herd: local file: .*missing build\.bin does not exist/)
      assert.doesNotMatch(r.stderr, /unknown option|too many arguments|run 'herd --help'/, 'the CLI accepted every option')
      const argv = readArgv(npx.argvFile)
      const at = (flag: string) => argv[argv.indexOf(flag) + 1]
      assert.deepEqual(argv.slice(0, 7), ['--yes', '--package', `${PACKAGE.name}@${PACKAGE.version}`, '--', 'herd', path.join(project, 'missing build.bin'), "/srv/it's a $(dest).bin"])
      assert.equal(at('--hostlist'), 'web-1, deploy@web-2:2222\n[fd00::3]:22')
      assert.equal(at('--retry'), '2')
      assert.equal(at('--port'), '9100-9110')
      assert.equal(at('--remote-path'), 'work dir/herd')
      assert.equal(at('--log-dir'), 'logs/herd')
      assert.equal(at('--timeout'), '60')
      assert.equal(at('--concurrency'), '4')
      assert.equal(at('--limit-rate'), '50M')
      assert.ok(argv.includes('--json'))
      assert.equal(argv.includes('--accept-new-host-keys'), false, 'strict host keys by default')
      assert.match(at('-i')!, /\/id$/)
      assert.match(at('--known-hosts')!, /\/known_hosts$/)
      assert.equal(fs.existsSync(at('-i')!), false, 'the key copy is removed when the job ends')
      assert.equal(fs.existsSync(path.dirname(at('-i')!)), false, 'the temporary folder is removed')
      assert.equal(fs.existsSync(path.join(project, 'logs/herd/report.json')), false, 'no empty report.json is left when herd exits 2')
    })
  }

  test('every option value passes the plan: with a real file the run stops only at the busy tracker port', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'plan-'))
    const project = path.join(dir, 'project')
    fs.mkdirSync(path.join(project, 'deploy'), { recursive: true })
    fs.writeFileSync(path.join(project, 'build.bin'), 'payload\n')
    fs.writeFileSync(path.join(project, 'deploy', 'hosts.txt'), '# fleet\nweb-1\ndeploy@web-2:2222\n')
    const key = path.join(dir, 'SSH_PRIVATE_KEY')
    sshKeygen(key, 'sesame')
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', resolve))
    const port = (busy.address() as net.AddressInfo).port
    try {
      const { job } = jobFor({
        file: 'build.bin',
        destination: '/srv/build.bin',
        hosts: 'deploy/hosts.txt',
        retry: -1,
        port: String(port),
        args: '--timeout 30 --user deploy',
        'ssh-strict': false,
        'limit-rate': '500k',
      })
      const npx = fakeNpx(dir, PACKAGE.version)
      const known = path.join(dir, 'SSH_KNOWN_HOSTS')
      fs.writeFileSync(known, 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3oTlq0CAZRpvxQ9a4fwIjRu4kzGxW5jBOKaP4vXO7r\n')
      const env = jobEnv(job, ciEnvFor(project, { SSH_PRIVATE_KEY: key, SSH_KNOWN_HOSTS: known, HERD_SSH_PASSPHRASE: 'sesame' }), npx.bin, path.join(dir, 'home'))
      const [cmd, ...args] = shellArgv('bash', job)
      const r = await run(cmd!, args, { env, cwd: project, timeoutMs: 60_000 })
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, new RegExp(`herd: --port: port ${port} busy`), 'hosts file, identity (with passphrase), known hosts, retry, timeout: all accepted')
      const argv = readArgv(npx.argvFile)
      assert.equal(argv[7], 'deploy/hosts.txt', 'a value with a / is a hosts file')
      assert.ok(argv.includes('--accept-new-host-keys'), 'ssh-strict: false')
    } finally {
      busy.close()
    }
  })

  test('no key at all (SSH_PRIVATE_KEY unset, no agent, empty ~/.ssh): exit 2 at once, naming SSH_PRIVATE_KEY', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'no-key-'))
    const project = path.join(dir, 'project')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'build.bin'), 'payload\n')
    const { job } = jobFor({ file: 'build.bin', destination: '/srv/build.bin', hosts: 'web-1, web-2' })
    const npx = fakeNpx(dir, PACKAGE.version)
    const env = jobEnv(job, ciEnvFor(project, { SSH_KNOWN_HOSTS: 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3oTlq0CAZRpvxQ9a4fwIjRu4kzGxW5jBOKaP4vXO7r' }), npx.bin, path.join(dir, 'home'))
    const r = await run('bash', shellArgv('bash', job).slice(1), { env, cwd: project, timeoutMs: 60_000 })
    assert.equal(r.code, 2, r.stderr)
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('herd: '))
    assert.equal(errors.length, 1, r.stderr)
    assert.match(errors[0]!, /^herd: SSH_PRIVATE_KEY: no SSH key to offer: .*; add the deploy key as the File variable SSH_PRIVATE_KEY/)
    assert.doesNotMatch(r.stderr, /web-1|web-2/, 'no host was tried')
    assert.equal(fs.existsSync(path.join(project, 'herd-logs', 'report.json')), false)
  })

  for (const [what, passphrase, message] of [
    ['a wrong HERD_SSH_PASSPHRASE', 'not the one', /^herd: ssh-agent: HERD_SSH_PASSPHRASE does not decrypt the key \(ssh-key, default \$SSH_PRIVATE_KEY\); check the variable$/],
    ['no HERD_SSH_PASSPHRASE', undefined, /^herd: ssh-agent: the key \(ssh-key, default \$SSH_PRIVATE_KEY\) is encrypted; set its passphrase in the masked variable HERD_SSH_PASSPHRASE$/],
  ] as const) {
    test(`ssh-agent: true, an encrypted key and ${what}: exit 2 at once with the cause, the agent stopped`, { skip: hasAgent ? false : 'needs ssh-agent and ssh-add' }, async () => {
      const dir = fs.mkdtempSync(path.join(work, 'agent-pass-'))
      const project = path.join(dir, 'project')
      fs.mkdirSync(project)
      fs.writeFileSync(path.join(project, 'build.bin'), 'payload\n')
      const key = path.join(dir, 'SSH_PRIVATE_KEY')
      sshKeygen(key, 'open sesame')
      const { job } = jobFor({ file: 'build.bin', destination: '/srv/build.bin', hosts: 'web-1', 'ssh-agent': true })
      const npx = fakeNpx(dir, PACKAGE.version)
      const home = path.join(dir, 'home')
      const env = jobEnv(job, ciEnvFor(project, { SSH_PRIVATE_KEY: key, ...(passphrase ? { HERD_SSH_PASSPHRASE: passphrase } : {}) }), npx.bin, home)
      try {
        // Before the fix ssh-add asked the askpass again and again, for ever.
        const r = await run('bash', shellArgv('bash', job).slice(1), { env, cwd: project, timeoutMs: 30_000 })
        assert.equal(r.timedOut, false, `ssh-add ended by itself\n${r.stderr.slice(0, 2000)}`)
        assert.equal(r.code, 2, r.stderr)
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('herd: '))
        assert.equal(errors.length, 1, r.stderr)
        assert.match(errors[0]!, message)
        if (passphrase) assert.ok(!r.stderr.includes(passphrase), 'the passphrase is never printed')
        assert.equal(fs.existsSync(npx.argvFile), false, 'herd did not run')
        const deadline = Date.now() + 5000
        while (agentsOf(home).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        assert.deepEqual(agentsOf(home), [], 'the job stops the ssh-agent it started')
      } finally {
        for (const pid of agentsOf(home)) process.kill(pid, 'SIGKILL')
      }
    })
  }

  test('herd-version: latest runs the newest release', () => {
    const { job } = jobFor({ file: 'a', destination: '/srv/a', hosts: 'h', 'herd-version': 'latest' })
    assert.match(job.script.join('\n'), new RegExp(`herd_package="${PACKAGE.name}@latest"`))
  })

  test('herd-package: the job runs herd from the npm spec given (a registry tarball URL, a path), CI/CD variables expanded', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'package-'))
    const project = path.join(dir, 'project')
    fs.mkdirSync(project)
    const spec = 'https://gitlab.example.com/api/v4/projects/42/packages/npm/herd-action/-/herd-action-1.0.0.tgz'
    const { job } = jobFor({ file: 'missing.bin', destination: '/srv/x.bin', hosts: 'web-1', 'herd-package': '${CI_API_V4_URL}/projects/42/packages/npm/herd-action/-/herd-action-1.0.0.tgz' })
    const npx = fakeNpx(dir, PACKAGE.version, cliPath, spec)
    const env = jobEnv(job, ciEnvFor(project, { CI_API_V4_URL: 'https://gitlab.example.com/api/v4' }), npx.bin, path.join(dir, 'home'))
    const r = await run('bash', shellArgv('bash', job).slice(1), { env, cwd: project, timeoutMs: 60_000 })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /herd: local file: .*missing\.bin does not exist/, 'herd ran from the given package')
    assert.deepEqual(readArgv(npx.argvFile).slice(0, 5), ['--yes', '--package', spec, '--', 'herd'])
    const { inputs } = loadComponent()
    assert.throws(() => resolveInputs(inputs, { file: 'f', destination: '/d', hosts: 'h', 'herd-package': '--registry=https://evil.example' }), /RegEx/, 'not an npx option')
  })
})

/** ```yaml blocks about herd in the GitLab docs (docs/gitlab.md, or the README once merged there). */
function docYamlBlocks(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = []
  for (const rel of ['docs/gitlab.md', 'README.md']) {
    const file = path.join(repoRoot, rel)
    if (!fs.existsSync(file)) continue
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)) if (/herd/.test(m[1]!)) out.push({ file: rel, text: m[1]! })
  }
  return out
}

describe('the GitLab examples in the docs', { skip: hasSsh ? false : 'needs ssh-keygen and bash' }, () => {
  const blocks = docYamlBlocks()

  test('every example parses; include: component examples give only declared inputs and every required one', (t) => {
    if (blocks.length === 0) return t.skip('no GitLab examples found')
    const { inputs } = loadComponent()
    let includes = 0
    for (const b of blocks) {
      const doc = YAML.parse(b.text) as { include?: { component?: string; remote?: string; inputs?: Record<string, unknown> }[] }
      for (const inc of doc.include ?? []) {
        if (!inc.component) continue
        includes++
        assert.match(inc.component, /\/herd@[^/]+$/, `${b.file}: the component is named herd`)
        assert.doesNotThrow(() => resolveInputs(inputs, inc.inputs ?? {}), `${b.file}: inputs of ${inc.component}`)
      }
    }
    assert.ok(includes >= 1, 'shows the include: component form')
  })

  test('the plain script: steps run a command line the CLI accepts', async (t) => {
    const jobs = blocks.flatMap((b) =>
      Object.entries(YAML.parse(b.text) as Record<string, Partial<Job>>).filter(([, j]) => Array.isArray(j?.script) && j.script!.some((l) => /npx --yes herd-action@/.test(l))).map(([name, j]) => ({ name, job: j as Job, file: b.file })),
    )
    if (jobs.length === 0) return t.skip('no plain script examples found')
    for (const { name, job, file } of jobs) {
      const dir = fs.mkdtempSync(path.join(work, 'doc-'))
      const project = path.join(dir, 'project')
      fs.mkdirSync(path.join(project, 'deploy'), { recursive: true })
      fs.writeFileSync(path.join(project, 'deploy', 'hosts.txt'), 'web-1\n')
      const key = path.join(dir, 'SSH_PRIVATE_KEY')
      sshKeygen(key)
      const version = /npx --yes herd-action@(\S+)/.exec(job.script.join('\n'))![1]!
      const npx = fakeNpx(dir, version)
      const ci = { CI_PROJECT_DIR: project, SSH_PRIVATE_KEY: key, SSH_KNOWN_HOSTS: 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3oTlq0CAZRpvxQ9a4fwIjRu4kzGxW5jBOKaP4vXO7r' }
      const env = jobEnv({ ...job, variables: job.variables ?? {} }, ci, npx.bin, path.join(dir, 'home'))
      // An example that starts an ssh-agent gets it stopped when the shell exits.
      const script = ['trap \'[ -n "${SSH_AGENT_PID:-}" ] && kill "$SSH_AGENT_PID"\' EXIT', ...(job.before_script ?? []), ...job.script].join('\n')
      const r = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { env, cwd: project, timeoutMs: 60_000 })
      assert.equal(r.code, 2, `${file} ${name}: exit 2 for the missing build file\n${r.stderr}`)
      assert.match(r.stderr, /herd: local file: .* does not exist/, `${file} ${name}`)
      if (job.artifacts) {
        assert.equal(job.artifacts.when, 'on_failure', `${file} ${name}: logs kept on failure`)
        assert.ok(job.artifacts.paths.some((p) => job.script.join('\n').includes(`--log-dir ${p.replace(/\/$/, '')}`)), `${file} ${name}: artifacts are the log dir`)
      }
    }
  })
})

const can = canRunCluster()

describe('the job on a 2-host cluster', { skip: can.ok ? (hasSsh ? false : 'needs ssh-keygen and bash') : can.why }, () => {
  let cluster: Cluster
  let dir: string
  let project: string
  let file: { path: string; sha256: string }

  before(async () => {
    cluster = await startCluster({ hosts: 2 })
    dir = fs.mkdtempSync(path.join(work, 'cluster-'))
    project = path.join(dir, 'project')
    fs.mkdirSync(path.join(project, 'deploy'), { recursive: true })
    file = randomFile(project, 'model.bin', 8 * 1024 * 1024, 0o644)
  })
  after(async () => {
    await cluster?.destroy()
  })

  /** Runs the interpolated job in the runner namespace as the GitLab runner would, with a fresh HOME (no ~/.ssh). */
  async function runJob(given: Record<string, unknown>, ci: Record<string, string>, name: string): Promise<{ r: RunResult; logDir: string; report?: Report; home: string }> {
    const { job } = jobFor(given)
    const npx = fakeNpx(fs.mkdtempSync(path.join(dir, `${name}-`)), PACKAGE.version)
    const home = fs.mkdtempSync(path.join(dir, `${name}-home-`))
    const env = jobEnv(job, { CI_PROJECT_DIR: project, CI_JOB_NAME: String(given['job-name'] ?? 'herd'), ...ci }, npx.bin, home)
    const r = await cluster.runInRunner(shellArgv('bash', job), { env, cwd: project, timeoutMs: 120_000 })
    const logDir = path.join(project, String(given['log-dir'] ?? 'herd-logs'))
    let report: Report | undefined
    try {
      report = JSON.parse(fs.readFileSync(path.join(logDir, 'report.json'), 'utf8')) as Report
    } catch {}
    return { r, logDir, report, home }
  }

  async function assertLanded(dest: string): Promise<void> {
    for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, dest), file.sha256, `${h.alias}: sha256 of ${dest}`)
    for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  }

  test('File-variable key and known hosts, hosts file in the repository: every host gets the file, logs and report for the artifacts', { timeout: 180_000 }, async () => {
    fs.writeFileSync(path.join(project, 'deploy', 'hosts.txt'), `# fleet\n${cluster.hosts.map((h) => `root@${h.address}`).join('\n')}\n`)
    const keyFile = path.join(dir, 'SSH_PRIVATE_KEY')
    fs.copyFileSync(cluster.identityPath, keyFile)
    fs.chmodSync(keyFile, 0o666) // File variables are not always 0600; herd must not care
    const knownFile = path.join(dir, 'SSH_KNOWN_HOSTS')
    fs.copyFileSync(cluster.knownHostsPath, knownFile)
    const { r, logDir, report } = await runJob(
      { file: '$CI_PROJECT_DIR/model.bin', destination: '/srv/gitlab-file.bin', hosts: 'deploy/hosts.txt', retry: 1, port: '8998-9010', 'remote-path': 'herd-work' },
      { SSH_PRIVATE_KEY: keyFile, SSH_KNOWN_HOSTS: knownFile },
      'file-key',
    )
    assert.equal(r.code, 0, r.stderr + r.stdout)
    assert.ok(report, 'report.json in the log dir')
    assert.deepEqual([...report.succeeded].sort(), cluster.hosts.map((h) => `root@${h.address}`).sort())
    for (const h of cluster.hosts) assert.ok(fs.existsSync(path.join(logDir, `root@${h.address}.log`)), `${h.alias}: its log file`)
    await assertLanded('/srv/gitlab-file.bin')
  })

  test('ssh-agent with an encrypted key given as text (CRLF) and known hosts as text, hosts as a list', { timeout: 180_000 }, async () => {
    const encrypted = path.join(dir, 'encrypted_key')
    fs.copyFileSync(cluster.identityPath, encrypted)
    fs.chmodSync(encrypted, 0o600)
    const re = spawnSync('ssh-keygen', ['-q', '-p', '-f', encrypted, '-P', '', '-N', 'open sesame'], { encoding: 'utf8', timeout: 15_000 })
    assert.equal(re.status, 0, re.stderr)
    const { r, report, home } = await runJob(
      { file: 'model.bin', destination: '/srv/gitlab-agent.bin', hosts: cluster.hosts.map((h) => h.address).join(' '), 'ssh-agent': true, args: '--user root', 'log-dir': 'agent-logs' },
      {
        SSH_PRIVATE_KEY: fs.readFileSync(encrypted, 'utf8').replace(/\n/g, '\r\n'),
        SSH_KNOWN_HOSTS: fs.readFileSync(cluster.knownHostsPath, 'utf8'),
        HERD_SSH_PASSPHRASE: 'open sesame',
      },
      'agent',
    )
    assert.equal(r.code, 0, r.stderr + r.stdout)
    assert.equal(report?.succeeded.length, 2)
    await assertLanded('/srv/gitlab-agent.bin')
    const deadline = Date.now() + 5000
    // Only this job's agent counts (its environment names the job's HOME): other agents on the machine come and go.
    while (agentsOf(home).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.deepEqual(agentsOf(home), [], 'the job stops the ssh-agent it started')
  })

  test('hosts missing from SSH_KNOWN_HOSTS: the fix names SSH_KNOWN_HOSTS and ssh-strict, not the job\'s temporary file', { timeout: 120_000 }, async () => {
    const { r, report } = await runJob(
      { file: 'model.bin', destination: '/srv/gitlab-unknown.bin', hosts: cluster.hosts.map((h) => `root@${h.address}`).join(','), 'log-dir': 'unknown-logs' },
      { SSH_PRIVATE_KEY: cluster.identityPath, SSH_KNOWN_HOSTS: 'web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3oTlq0CAZRpvxQ9a4fwIjRu4kzGxW5jBOKaP4vXO7r\n' },
      'unknown',
    )
    assert.equal(r.code, 1, r.stderr)
    assert.equal(report?.failed.length, 2)
    for (const h of report!.hosts) {
      assert.equal(h.kind, 'host-key-unknown', h.cause)
      assert.match(h.cause!, /then add the output of `ssh-keyscan \S+` to the SSH_KNOWN_HOSTS variable \(or the one the ssh-known-hosts input names\); or trust it on first use with the input ssh-strict: false$/)
    }
    assert.doesNotMatch(r.stderr + r.stdout, />> \/tmp|known_hosts;/, 'no temporary file in the advice')
  })

  test('a host that fails makes the job fail (exit 1) and leaves its log for the on_failure artifacts', { timeout: 180_000 }, async () => {
    const down = cluster.hosts[1]!
    await cluster.stopSshd(down)
    try {
      const { r, logDir, report } = await runJob(
        { file: 'model.bin', destination: '/srv/gitlab-fail.bin', hosts: cluster.hosts.map((h) => `root@${h.address}`).join(','), 'log-dir': 'fail-logs' },
        { SSH_PRIVATE_KEY: cluster.identityPath, SSH_KNOWN_HOSTS: fs.readFileSync(cluster.knownHostsPath, 'utf8') },
        'fail',
      )
      assert.equal(r.code, 1, r.stderr)
      assert.deepEqual(report?.failed, [`root@${down.address}`])
      assert.match(fs.readFileSync(path.join(logDir, `root@${down.address}.log`), 'utf8'), /refused/i, 'the failed host has a log naming the cause')
      assert.equal(await cluster.sha256On(cluster.hosts[0]!, '/srv/gitlab-fail.bin'), file.sha256)
    } finally {
      await cluster.startSshd(down)
    }
  })
})

/** ssh-agents started by a job whose HOME is `home` (they carry the job's environment): only the test's own. */
function agentsOf(home: string): number[] {
  const pids: number[] = []
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'ssh-agent') continue
      if (fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HOME=${home}`)) pids.push(Number(pid))
    } catch {}
  }
  return pids
}
