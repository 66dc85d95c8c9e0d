// A folder's destination: the identical-tree check, unpacking beside it, and the switch (renames or a release symlink).
import fs from 'node:fs'
import path from 'node:path'
import type { StartMessage } from '../core/protocol.js'
import { treeDigest } from '../engine/tree.js'
import { AgentError, fsFailure, parentFolder, writableFolder, type Owner } from './destination.js'
import { syncFolder, unpackTree } from './unpack.js'

type TreeStart = StartMessage & { tree: NonNullable<StartMessage['tree']> }

/** Where the tree is seen: the destination itself, or with releases the `current` link in it. */
export function livePath(start: TreeStart): string {
  return start.tree.releases ? path.join(start.destination, 'current') : start.destination
}

async function lstatOrNone(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fs.promises.lstat(p)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fsFailure(err as NodeJS.ErrnoException, p)
  }
}

/** Checks before any byte moves: the parent folder, what the destination is now, and whether it already holds the tree. */
export async function preflightTree(start: TreeStart): Promise<'identical' | 'fetch'> {
  const dest = start.destination
  await writableFolder(await parentFolder(dest))
  const st = await lstatOrNone(dest)
  if (st && !st.isDirectory()) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'
    throw new AgentError('not-a-file', `${dest} is ${what}; a folder is pushed to a folder: remove it${st.isSymbolicLink() ? ', push to the folder it points at, or use --releases' : ''} or choose another destination`)
  }
  if (start.tree.releases && st) {
    const current = await lstatOrNone(path.join(dest, 'current'))
    if (current && !current.isSymbolicLink()) throw new AgentError('not-a-file', `${dest}/current is not a symbolic link, so --releases would replace what is there; move it away or push without --releases`)
    await writableFolder(dest)
  }
  const live = livePath(start)
  const liveStat = await fs.promises.stat(live).catch(() => undefined)
  // The identical tree stays as it is (no new release either): a re-run changes nothing.
  if (liveStat?.isDirectory() && (await treeDigest(live)) === start.tree.digest) return 'identical'
  return 'fetch'
}

/** Removes whatever sits at `p` (a leftover of a crashed run, or a link planted there), never following a link. */
async function clear(p: string, log: (message: string) => void): Promise<void> {
  if (!(await lstatOrNone(p))) return
  await fs.promises.rm(p, { recursive: true, force: true })
  log(`removed a leftover at ${p}`)
}

/** A fresh folder only this agent created, mode 0700 until it is switched in. */
async function freshFolder(p: string, log: (message: string) => void): Promise<void> {
  await clear(p, log)
  await fs.promises.mkdir(p, { mode: 0o700 })
}

function releaseNames(names: string[]): string[] {
  return names.filter((n) => !n.startsWith('.')).sort()
}

/** Keeps the newest `keep` releases and the one `current` points at; removes the rest. */
async function pruneReleases(dest: string, keep: number, log: (message: string) => void): Promise<void> {
  const releases = path.join(dest, 'releases')
  const live = await fs.promises.readlink(path.join(dest, 'current')).catch(() => '')
  const names = releaseNames(await fs.promises.readdir(releases))
  for (const name of names.slice(0, Math.max(0, names.length - keep))) {
    if (`releases/${name}` === live) continue
    await fs.promises.rm(path.join(releases, name), { recursive: true, force: true })
    log(`removed old release ${name}`)
  }
}

/**
 * Unpacks the verified payload beside the destination and switches it in. With releases: into
 * releases/<id>, then `current` is replaced by one rename of a new link (no moment without a tree).
 * Without: the old folder is renamed aside and the new one renamed in (a few microseconds without a
 * folder, never a partial one); the old one is removed when `cleanup` runs, after readers had time.
 */
export async function placeTree(payload: string, start: TreeStart, owner: Owner, log: (message: string) => void): Promise<{ cleanup: () => Promise<void> }> {
  const dest = start.destination
  const parent = path.dirname(dest)
  const tag = `${path.basename(dest)}.herd-${start.sha256.slice(0, 16)}`
  const began = Date.now()
  if (start.tree.releases) {
    const releases = path.join(dest, 'releases')
    await fs.promises.mkdir(releases, { recursive: true, mode: 0o755 })
    const staging = path.join(releases, `.${start.tree.release}.new`)
    await freshFolder(staging, log)
    const count = await unpackTree(payload, staging, owner)
    await fs.promises.chmod(staging, start.mode)
    const release = path.join(releases, start.tree.release)
    await clear(release, log)
    await fs.promises.rename(staging, release)
    await syncFolder(releases)
    const link = path.join(dest, `.current.herd-${start.sha256.slice(0, 16)}`)
    await clear(link, log)
    await fs.promises.symlink(`releases/${start.tree.release}`, link)
    await fs.promises.rename(link, path.join(dest, 'current'))
    await syncFolder(dest)
    log(`unpacked ${count} entries into ${release} and switched ${dest}/current to it in ${((Date.now() - began) / 1000).toFixed(2)} s`)
    await pruneReleases(dest, start.tree.releases, log)
    return { cleanup: async () => {} }
  }
  const staging = path.join(parent, `.${tag}.new`)
  const old = path.join(parent, `.${tag}.old`)
  await freshFolder(staging, log)
  const count = await unpackTree(payload, staging, owner)
  await fs.promises.chmod(staging, start.mode)
  await clear(old, log)
  const hadOne = !!(await lstatOrNone(dest))
  if (hadOne) await fs.promises.rename(dest, old)
  await fs.promises.rename(staging, dest)
  await syncFolder(parent)
  log(`unpacked ${count} entries and switched ${dest} in by rename in ${((Date.now() - began) / 1000).toFixed(2)} s`)
  return { cleanup: async () => { if (hadOne) await fs.promises.rm(old, { recursive: true, force: true }) } }
}

/** Removes staging folders, unfinished releases and release links that a crashed run of this destination left. */
export async function removeStaleStaging(start: TreeStart, log: (message: string) => void): Promise<void> {
  const parent = path.dirname(start.destination)
  const prefix = `.${path.basename(start.destination)}.herd-`
  const names = await fs.promises.readdir(parent).catch(() => [] as string[])
  for (const name of names) {
    if (name.startsWith(prefix) && (name.endsWith('.new') || name.endsWith('.old'))) await clear(path.join(parent, name), log)
  }
  if (!start.tree.releases) return
  // A release a crashed run was unpacking, and a link it was about to rename over current.
  const releases = path.join(start.destination, 'releases')
  for (const name of await fs.promises.readdir(releases).catch(() => [] as string[])) {
    if (name.startsWith('.') && name.endsWith('.new')) await clear(path.join(releases, name), log)
  }
  for (const name of await fs.promises.readdir(start.destination).catch(() => [] as string[])) {
    if (name.startsWith('.current.herd-')) await clear(path.join(start.destination, name), log)
  }
}
