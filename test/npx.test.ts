// The npm package as `npx` users get it: `npm pack`, installed offline into an empty folder outside the repository, run with npx.
// HERD_NPX_TARBALL=<file.tgz> tests that tarball (for example the one about to be published) instead of packing the checkout.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { canRunCluster, run, startCluster, type Cluster } from './support/cluster.js'
import { hostsFile, randomFile, repoRoot } from './support/herd.js'
import type { Report } from '../src/core/report.js'

const MiB = 1024 * 1024
/** What the package may hold: the two bundles and what npm always adds. */
const ALLOWED = /^(package\.json|README(\.md)?|LICENSE(\.md|\.txt)?|dist\/cli\/[^/]+|dist\/agent\/[^/]+)$/
const REQUIRED = ['package.json', 'dist/cli/index.js', 'dist/cli/package.json', 'dist/agent/agent.mjs']
const MAX_PACKED = 4 * MiB
const MAX_UNPACKED = 12 * MiB
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare', 'prepublish']

let work: string
let tarball: string
let installDir: string
/** npm isolated from this machine's config and cache, never asking the registry. */
let npmEnv: NodeJS.ProcessEnv

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-npx-'))
  assert.equal(path.relative(repoRoot, work).startsWith('..'), true, 'the work folder is outside the repository')
  fs.writeFileSync(path.join(work, 'npmrc'), '')
  npmEnv = {
    ...process.env,
    npm_config_userconfig: path.join(work, 'npmrc'),
    npm_config_cache: path.join(work, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_loglevel: 'error',
  }
  delete npmEnv.HERD_AGENT_BUNDLE // the installed CLI must find the agent it ships
  if (process.env.HERD_NPX_TARBALL) {
    tarball = path.resolve(process.env.HERD_NPX_TARBALL)
  } else {
    const packDir = path.join(work, 'pack')
    fs.mkdirSync(packDir)
    const r = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: repoRoot, env: npmEnv, timeoutMs: 120_000 })
    assert.equal(r.code, 0, `npm pack: ${r.stderr}`)
    const [info] = JSON.parse(r.stdout) as { filename: string }[]
    tarball = path.join(packDir, path.basename(info!.filename))
  }
  assert.ok(fs.existsSync(tarball), tarball)
})

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

/** Entries of the tarball, without npm's `package/` prefix. */
function tarEntries(): { path: string; size: number }[] {
  const out = execFileSync('tar', ['-tvzf', tarball], { encoding: 'utf8', timeout: 30_000 })
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.trim().split(/\s+/)
      return { size: Number(f[2]), path: f.slice(5).join(' ').replace(/^package\//, '') }
    })
    .filter((e) => !e.path.endsWith('/'))
}

function packedManifest(): Record<string, any> {
  return JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8', timeout: 30_000 }))
}

describe('the packed tarball', () => {
  test('holds the CLI and agent bundles and nothing else, and stays small', () => {
    const entries = tarEntries()
    const paths = entries.map((e) => e.path)
    for (const p of REQUIRED) assert.ok(paths.includes(p), `${p} is in the package`)
    assert.deepEqual(paths.filter((p) => !ALLOWED.test(p)), [], 'only what runs: set "files" in package.json')
    const packed = fs.statSync(tarball).size
    const unpacked = entries.reduce((n, e) => n + e.size, 0)
    const line = `${path.basename(tarball)}: ${(packed / MiB).toFixed(2)} MiB packed, ${(unpacked / MiB).toFixed(2)} MiB unpacked, ${entries.length} files`
    console.log(line)
    assert.ok(packed < MAX_PACKED, `${line}: over ${MAX_PACKED / MiB} MiB packed`)
    assert.ok(unpacked < MAX_UNPACKED, `${line}: over ${MAX_UNPACKED / MiB} MiB unpacked`)
  })

  test('its package.json: bins herd and herd-action, honest engines, nothing to install or build', () => {
    const pkg = packedManifest()
    assert.equal(pkg.bin?.herd, 'dist/cli/index.js')
    assert.equal(pkg.bin?.['herd-action'], 'dist/cli/index.js')
    assert.match(String(pkg.engines?.node), />=\s*20/, 'Node.js 20 or newer, as the bundles and the agent need')
    assert.deepEqual(Object.keys(pkg.dependencies ?? {}), [], 'the bundles carry every dependency: none may be installed from the registry')
    assert.deepEqual(Object.keys(pkg.optionalDependencies ?? {}), [])
    assert.deepEqual(Object.keys(pkg.peerDependencies ?? {}), [])
    assert.deepEqual(INSTALL_SCRIPTS.filter((s) => pkg.scripts?.[s] !== undefined), [], 'no install-time scripts')
    const cliHead = execFileSync('tar', ['-xzOf', tarball, 'package/dist/cli/index.js'], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 * MiB }).split('\n', 1)[0]
    assert.equal(cliHead, '#!/usr/bin/env node')
  })
})

describe('installed into an empty folder with npm, offline', () => {
  before(async () => {
    installDir = path.join(work, 'install')
    fs.mkdirSync(installDir)
    // --offline with an empty cache: anything not inside the tarball would fail with ENOTCACHED.
    const r = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: installDir, env: npmEnv, timeoutMs: 120_000 })
    assert.equal(r.code, 0, `npm install: ${r.stderr}`)
  })

  test('installs the one package and its two commands', () => {
    assert.deepEqual(fs.readdirSync(path.join(installDir, 'node_modules')).filter((n) => !n.startsWith('.')), ['herd-action'])
    for (const bin of ['herd', 'herd-action']) assert.ok(fs.existsSync(path.join(installDir, 'node_modules', '.bin', bin)), `.bin/${bin}`)
  })

  test('npx herd --help prints the usage; npx herd-action --version the version', async () => {
    const help = await run('npx', ['--no-install', 'herd', '--help'], { cwd: installDir, env: npmEnv, timeoutMs: 60_000 })
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^Usage: herd \[options\] LOCAL_FILE REMOTE_FILE \[HOSTS_FILE\]/)
    assert.match(help.stdout, /Exit codes:/)
    const version = await run('npx', ['--no-install', 'herd-action', '--version'], { cwd: installDir, env: npmEnv, timeoutMs: 60_000 })
    assert.equal(version.code, 0, version.stderr)
    assert.equal(version.stdout.trim(), packedManifest().version)
  })

  test('npx herd exits 2 with the cause for a usage mistake', async () => {
    const r = await run('npx', ['--no-install', 'herd', path.join(work, 'no-such-file'), '/srv/x', '--hostlist', 'web-1'], { cwd: installDir, env: npmEnv, timeoutMs: 60_000 })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /local file: .*no-such-file does not exist/)
  })

  test('npx --yes ./herd-action-*.tgz runs the tarball directly, without the registry', async () => {
    const bare = path.join(work, 'bare')
    fs.mkdirSync(bare)
    fs.copyFileSync(tarball, path.join(bare, path.basename(tarball)))
    const env = { ...npmEnv, npm_config_cache: path.join(work, 'npx-cache') }
    const r = await run('npx', ['--yes', '--offline', `./${path.basename(tarball)}`, '--help'], { cwd: bare, env, timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^Usage: herd /)
  })
})

const can = canRunCluster()

describe('a real push through the installed npx herd', { skip: can.ok ? false : can.why }, () => {
  let cluster: Cluster
  let data: string
  let file: { path: string; sha256: string }

  before(async () => {
    cluster = await startCluster({ hosts: 4 })
    data = path.join(work, 'data')
    fs.mkdirSync(data)
    file = randomFile(data, 'release.tar', 24 * MiB, 0o644)
  })
  after(async () => {
    await cluster?.destroy()
  })

  test('pushes a file to 4 hosts; sha256 verified on each, nothing left running', { timeout: 180_000 }, async () => {
    assert.ok(installDir && fs.existsSync(path.join(installDir, 'node_modules', '.bin', 'herd')), 'the package is installed')
    const logs = path.join(data, 'logs')
    const env = cluster.env({ HERD_AGENT_BUNDLE: '', npm_config_userconfig: npmEnv.npm_config_userconfig!, npm_config_cache: npmEnv.npm_config_cache!, npm_config_update_notifier: 'false' })
    const r = await cluster.runInRunner(['npx', '--no-install', 'herd', file.path, '/srv/release.tar', hostsFile(data, cluster.hosts), '--log-dir', logs, '--json'], {
      cwd: installDir,
      env,
      timeoutMs: 150_000,
    })
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const report = JSON.parse(r.stdout) as Report
    assert.deepEqual(report.succeeded, cluster.hosts.map((h) => h.alias))
    for (const h of cluster.hosts) {
      assert.equal(await cluster.sha256On(h, '/srv/release.tar'), file.sha256, `${h.alias}: sha256`)
      assert.ok(fs.existsSync(path.join(logs, `${h.alias}.log`)), `${h.alias}: log`)
    }
    for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
  })
})
