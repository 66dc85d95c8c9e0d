// What the swarm carries: the local file in place, or a folder packed once into a private tar file.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { TreeError, packTree } from '../../engine/tree.js'
import type { TreeDelivery } from '../protocol.js'
import { PlanError, type Plan } from '../plan.js'

/** The bytes the torrent is made of, and how a folder lands. */
export interface Payload {
  /** The file the seeder serves. */
  path: string
  /** Set for a folder: its manifest digest, release name and how many releases to keep. */
  tree?: TreeDelivery
  /** Removes what was made for the run (a folder's tar); the local file itself is never touched. */
  dispose(): Promise<void>
}

/** A release name that sorts by age on every host: UTC time to the second and a tag of this run. */
function releaseName(now: Date): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${crypto.randomBytes(3).toString('hex')}`
}

/**
 * The run's payload. A folder is packed into a tar in a fresh 0700 folder under the temporary folder
 * (one local copy: the seeder needs a file to serve pieces from at any offset).
 */
export async function preparePayload(plan: Plan): Promise<Payload> {
  if (!plan.tree) return { path: plan.file, dispose: async () => {} }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'herd-payload-'))
  const dispose = () => fs.promises.rm(dir, { recursive: true, force: true })
  const tar = path.join(dir, 'payload.tar')
  try {
    const { digest } = await packTree(plan.file, tar)
    return { path: tar, tree: { digest, releases: plan.releases, release: releaseName(new Date()) }, dispose }
  } catch (err) {
    await dispose()
    if (err instanceof TreeError) throw new PlanError('local file', err.message)
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOSPC') throw new PlanError('local file', `no room to pack ${plan.file} under ${os.tmpdir()} (ENOSPC); free space there or point TMPDIR at a larger disk`)
    throw err
  }
}
