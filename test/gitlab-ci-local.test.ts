// The component as GitLab runs it: a project's .gitlab-ci.yml includes templates/herd.yml with inputs, and gitlab-ci-local
// checks the pipeline against GitLab's schema and runs the job's script on the shell executor, herd coming from a packed tarball.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import { canRunCluster, run, startCluster, type Cluster } from './support/cluster.js'
import { randomFile, repoRoot } from './support/herd.js'
import { gitlabCiLocal, gitlabCiLocalMissing, gitProject, jobExitCode } from './support/gitlab-ci-local.js'

const missing = gitlabCiLocalMissing() ?? (spawnSync('sh', ['-c', 'command -v ssh-keygen && command -v ssh-agent'], { timeout: 5000 }).status === 0 ? undefined : 'needs ssh-keygen and ssh-agent')
const COMPONENT = fs.readFileSync(path.join(repoRoot, 'templates', 'herd.yml'), 'utf8')

let work: string
let tarball: string
/** npm kept off this machine's config and cache, and off the registry: the job's npx can only use the tarball. */
let npmEnv: Record<string, string>

before(async () => {
  if (missing) return
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-gcl-'))
  fs.writeFileSync(path.join(work, 'npmrc'), '')
  npmEnv = {
    npm_config_userconfig: path.join(work, 'npmrc'),
    npm_config_cache: path.join(work, 'npm-cache'),
    npm_config_offline: 'true',
    npm_config_loglevel: 'error',
  }
  const packDir = path.join(work, 'pack')
  fs.mkdirSync(packDir)
  const r = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: repoRoot, env: { ...process.env, ...npmEnv, npm_config_offline: 'false' }, timeoutMs: 120_000 })
  assert.equal(r.code, 0, `npm pack: ${r.stderr}`)
  tarball = path.join(packDir, (JSON.parse(r.stdout) as { filename: string }[])[0]!.filename)
})

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

/** A project that includes the component with these inputs (herd from the packed tarball), and a payload file. */
function projectWith(name: string, inputs: Record<string, unknown>, files: Record<string, string> = {}): string {
  const ci = { include: [{ local: 'templates/herd.yml', inputs: { 'herd-package': tarball, ...inputs } }], stages: ['deploy'] }
  return gitProject(path.join(work, name), { '.gitlab-ci.yml': YAML.stringify(ci), 'templates/herd.yml': COMPONENT, ...files })
}

/** The job's environment: a HOME of its own (no ~/.ssh), no agent, npm offline. */
function jobEnv(home: string): NodeJS.ProcessEnv {
  fs.mkdirSync(home, { recursive: true })
  return { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', ...npmEnv }
}

describe('the component under gitlab-ci-local', { skip: missing ?? false }, () => {
  test('ssh-agent: true and a wrong HERD_SSH_PASSPHRASE: the job ends at once with exit 2 and the cause', { timeout: 120_000 }, async () => {
    const key = path.join(work, 'encrypted_key')
    const k = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-f', key], { encoding: 'utf8', timeout: 15_000 })
    assert.equal(k.status, 0, k.stderr)
    const project = projectWith('agent-pass', { file: 'build.bin', destination: '/srv/build.bin', hosts: 'web-1', 'ssh-agent': true }, { 'build.bin': 'payload\n' })
    const home = path.join(work, 'agent-pass-home')
    const r = await gitlabCiLocal(project, [], {
      env: jobEnv(home),
      variables: { SSH_PRIVATE_KEY: fs.readFileSync(key, 'utf8'), HERD_SSH_PASSPHRASE: 'not the one' },
      timeoutMs: 60_000,
    })
    const out = r.stdout + r.stderr
    assert.equal(r.timedOut, false, `the job ended by itself\n${out.slice(-3000)}`)
    assert.match(out, /json schema validated/)
    assert.equal(jobExitCode(out, 'herd'), 2, out)
    assert.match(out, /herd: ssh-agent: HERD_SSH_PASSPHRASE does not decrypt the key \(ssh-key, default \$SSH_PRIVATE_KEY\); check the variable/)
    assert.ok(!out.includes('not the one'), 'the passphrase is never printed')
  })

  test('an input that fails its spec (a relative destination) stops the pipeline before any job runs', { timeout: 60_000 }, async () => {
    const project = projectWith('bad-input', { file: 'build.bin', destination: 'srv/build.bin', hosts: 'web-1' }, { 'build.bin': 'payload\n' })
    const r = await gitlabCiLocal(project, [], { env: jobEnv(path.join(work, 'bad-input-home')), timeoutMs: 60_000 })
    const out = r.stdout + r.stderr
    assert.notEqual(r.code, 0, out)
    assert.match(out, /destination/, out)
    assert.equal(jobExitCode(out, 'herd'), undefined, 'no job ran')
  })
})

const can = canRunCluster()

describe('the component under gitlab-ci-local on a 2-host cluster', { skip: missing ?? (can.ok ? false : can.why) }, () => {
  let cluster: Cluster

  before(async () => {
    cluster = await startCluster({ hosts: 2 })
  })
  after(async () => {
    await cluster?.destroy()
  })

  test('herd-package: a packed tarball, no registry: every host gets the file, logs and report.json for the artifacts', { timeout: 240_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(work, 'push-'))
    const file = randomFile(dir, 'model.bin', 4 * 1024 * 1024)
    const hosts = cluster.hosts.map((h) => `root@${h.address}`)
    const project = projectWith('push', { file: 'model.bin', destination: '/srv/gcl.bin', hosts: hosts.join(', '), retry: 1, 'log-dir': 'herd-logs' }, {
      'model.bin': '',
    })
    fs.copyFileSync(file.path, path.join(project, 'model.bin'))
    const r = await gitlabCiLocal(project, [], {
      env: jobEnv(path.join(dir, 'home')),
      variables: { SSH_PRIVATE_KEY: fs.readFileSync(cluster.identityPath, 'utf8'), SSH_KNOWN_HOSTS: fs.readFileSync(cluster.knownHostsPath, 'utf8') },
      timeoutMs: 180_000,
      runner: (argv, o) => cluster.runInRunner(argv, o),
    })
    const out = r.stdout + r.stderr
    assert.equal(jobExitCode(out, 'herd'), 0, out.slice(-4000))
    for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, '/srv/gcl.bin'), file.sha256, `${h.alias}: sha256`)
    const report = JSON.parse(fs.readFileSync(path.join(project, 'herd-logs', 'report.json'), 'utf8')) as { succeeded: string[] }
    assert.deepEqual([...report.succeeded].sort(), [...hosts].sort())
    for (const host of hosts) assert.ok(fs.existsSync(path.join(project, 'herd-logs', `${host}.log`)), `${host}: its log`)
    for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  })
})
