// The setup most real-host test files share: a cluster, a private temporary folder, and a random file in it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, before } from 'node:test'
import { canRunCluster, startCluster, type Cluster, type ClusterOptions } from './cluster.js'
import { randomFile } from './herd.js'

export interface TestFile {
  path: string
  sha256: string
}

export interface ClusterFixture {
  cluster: Cluster
  work: string
  file: TestFile
  /** Stops the hosts and removes the folder; safe to call twice. */
  close(): Promise<void>
}

export interface FixtureOptions extends ClusterOptions {
  /** Prefix of the temporary folder's name, e.g. 'herd-push-'. */
  prefix: string
  file: { name: string; bytes: number; mode?: number }
  /** Mode of the temporary folder (0755 when a test runs herd as an unprivileged user). */
  workMode?: number
}

export async function openClusterFixture(opts: FixtureOptions): Promise<ClusterFixture> {
  const { prefix, file: spec, workMode, ...clusterOpts } = opts
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  let cluster: Cluster
  try {
    if (workMode !== undefined) fs.chmodSync(work, workMode)
    cluster = await startCluster(clusterOpts)
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true })
    throw err
  }
  const file = randomFile(work, spec.name, spec.bytes, spec.mode)
  let closed = false
  return {
    cluster,
    work,
    file,
    async close() {
      if (closed) return
      closed = true
      try {
        await cluster.destroy()
      } finally {
        fs.rmSync(work, { recursive: true, force: true })
      }
    },
  }
}

/**
 * One cluster for every test of a file: opened before the first test, closed after the last; `use` is given
 * it once open, to keep short names for its parts. Returns the tests' `skip` option: false, or why they
 * cannot run here (no cluster on this machine, or `can` says no). Call once, at the top of a test file.
 */
export function clusterForFile(opts: FixtureOptions, use: (fx: ClusterFixture) => void, can = canRunCluster()): string | false {
  let fx: ClusterFixture | undefined
  before(async () => {
    if (!can.ok) return
    fx = await openClusterFixture(opts)
    use(fx)
  })
  after(() => fx?.close())
  return can.ok ? false : (can.why ?? 'cannot run a cluster here')
}

/**
 * What a test started and must not leave behind (detached herd runs, frozen processes): add a way to end
 * each; after every test of the file, each is called and forgotten, so a test that fails half way leaves
 * nothing holding the port or the hosts. Call once, at the top of a test file.
 */
export function endedAfterEach(): Set<() => void> {
  const ends = new Set<() => void>()
  afterEach(() => {
    for (const end of ends) end()
    ends.clear()
  })
  return ends
}
