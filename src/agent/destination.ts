// The destination side of an agent: checks before any byte moves, the temporary file, the lock, the final rename.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import type { AgentErrorCode, StartMessage } from '../core/protocol.js'
import { deliveredMode } from '../engine/tree.js'
import { chownFailure } from './owner.js'

/** A failure with a stable cause the runner can explain. */
export class AgentError extends Error {
  constructor(readonly code: AgentErrorCode, message: string) {
    super(message)
  }
}

/** Temporary file beside the destination, named by content so a re-run or retry resumes it. */
export function partialPathFor(destination: string, sha256: string): string {
  return path.join(path.dirname(destination), `.${path.basename(destination)}.herd-${sha256.slice(0, 16)}.part`)
}

/** Maps a filesystem error on the destination side to a cause and a fix. */
export function fsFailure(err: NodeJS.ErrnoException, what: string): AgentError {
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new AgentError('no-space', `no space left for ${what} (${err.code}); free space on that filesystem or choose another destination`)
    case 'EROFS':
      return new AgentError('read-only-fs', `${what} is on a read-only filesystem (EROFS); choose another destination`)
    case 'EACCES':
    case 'EPERM':
      return new AgentError('not-writable', `${what} is not writable by this user (${err.code}); fix its permissions or connect as a user who may write it`)
    case 'ENOENT':
      // The temporary file removed under us (a cleaner, another tool) is worth another attempt.
      if (what.endsWith('.part')) return new AgentError('io', `${what} disappeared during the run (ENOENT); it is retried`)
      return new AgentError('no-folder', `${what} does not exist (ENOENT); create the folder first (herd does not create folders)`)
    case 'EISDIR':
      return new AgentError('not-a-file', `${what} is a directory (EISDIR); give the full path of the file`)
    default:
      return new AgentError('io', `${what}: ${err.message}`)
  }
}

/** SHA-256 of a file through one reused buffer: a stream's fresh 4 MiB per read piles up until GC. */
export async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256')
  const buf = Buffer.allocUnsafe(1024 * 1024)
  const fh = await fs.promises.open(file, 'r')
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

/** The folder a destination goes in, which must exist (herd creates none). */
export async function parentFolder(destination: string): Promise<string> {
  const dir = path.dirname(destination)
  const dirStat = await fs.promises.stat(dir).catch((err: NodeJS.ErrnoException) => { throw fsFailure(err, `folder ${dir}`) })
  if (!dirStat.isDirectory()) throw new AgentError('no-folder', `${dir} is not a folder; choose a destination inside an existing folder`)
  return dir
}

/** Fails unless this login may create entries in `dir`. */
export async function writableFolder(dir: string): Promise<void> {
  await fs.promises.access(dir, fs.constants.W_OK).catch((err: NodeJS.ErrnoException) => { throw fsFailure(err, `folder ${dir}`) })
}

/** Checks what can be checked before any byte moves: the folder, the destination, write access. */
export async function preflight(start: StartMessage): Promise<'identical' | 'fetch'> {
  const dir = await parentFolder(start.destination)
  let destStat: fs.Stats | undefined
  try {
    destStat = await fs.promises.stat(start.destination)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsFailure(err as NodeJS.ErrnoException, start.destination)
  }
  if (destStat && !destStat.isFile()) throw new AgentError('not-a-file', `${start.destination} exists and is not a regular file; remove it or choose another destination`)
  await writableFolder(dir)
  // The identical file stays as it is, mode and owner included: a re-run changes nothing.
  if (destStat && destStat.size === start.size && (await sha256Of(start.destination)) === start.sha256) return 'identical'
  return 'fetch'
}

/**
 * The temporary file, created exclusively and never through a symbolic link (O_EXCL, O_NOFOLLOW). A
 * leftover is resumed only when it is a regular file of this login with one link; anything else at
 * that name (a link planted in a folder others may write, another user's file) is removed first.
 */
export async function createPartial(partial: string, log: (message: string) => void): Promise<void> {
  const st = await fs.promises.lstat(partial).catch(() => undefined)
  if (st) {
    const uid = process.getuid?.()
    if (st.isFile() && st.nlink === 1 && (uid === undefined || st.uid === uid)) return
    const what = st.isSymbolicLink() ? 'a symbolic link' : st.isFile() ? `a file of uid ${st.uid} with ${st.nlink} link(s)` : 'something other than a file'
    try {
      await fs.promises.unlink(partial)
    } catch (err) {
      throw new AgentError('not-writable', `${partial} is ${what}, not herd's temporary file, and cannot be removed (${(err as NodeJS.ErrnoException).code}); remove it or choose another destination`)
    }
    log(`removed ${what} found where the temporary file goes (${partial}); never written through`)
  }
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants
  const fh = await fs.promises.open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST' || err.code === 'ELOOP') throw new AgentError('io', `${partial} appeared while herd created it (${err.code}); another process writes there, retrying`)
    throw err
  })
  await fh.close()
}

/** A uid and gid the user asked for with --owner / --group (resolved on this host). */
export interface Owner {
  uid?: number
  gid?: number
}

/**
 * Mode and owner the new file takes: what --mode, --owner and --group ask (`asked`: a failure to set
 * them fails the host); else an existing destination's own (owner and group only where this login may
 * set them); for a new one the local file's mode without setuid, setgid, or write for group and others
 * (a 0666 file from a umask-0000 CI job lands 0644).
 */
export async function targetAttributes(start: StartMessage, owner: Owner): Promise<{ mode: number; uid?: number; gid?: number; asked: boolean }> {
  const st = await fs.promises.stat(start.destination).catch(() => undefined)
  const kept = st?.isFile() ? { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } : { mode: deliveredMode(start.mode), uid: undefined, gid: undefined }
  const asked = owner.uid !== undefined || owner.gid !== undefined
  const uid = owner.uid ?? kept.uid ?? (asked ? process.getuid?.() : undefined)
  const gid = owner.gid ?? kept.gid ?? (asked ? process.getgid?.() : undefined)
  return { mode: start.attributes?.mode ?? kept.mode, uid, gid, asked }
}

/** Refuses to start a download that can't fit, rather than fill the filesystem and fail at the end. */
export async function checkFreeSpace(start: StartMessage, partial: string): Promise<void> {
  const dir = path.dirname(start.destination)
  let free: number
  try {
    const fsInfo = await fs.promises.statfs(dir)
    free = (process.getuid?.() === 0 ? fsInfo.bfree : fsInfo.bavail) * fsInfo.bsize
  } catch {
    return // not knowable here (old kernel, odd filesystem): the writes will tell
  }
  const resumed = await fs.promises.stat(partial).then((st) => st.blocks * 512, () => 0)
  // A folder's payload is unpacked beside itself before it is removed: room for both.
  const needed = start.size - Math.min(resumed, start.size) + (start.tree ? start.size : 0)
  if (needed > free) {
    throw new AgentError('no-space', `no space left for ${start.destination}: ${needed} more bytes needed in ${dir}, ${free} free; free space on that filesystem or choose another destination`)
  }
}

/** Removes temporary files of earlier runs for this destination that hold other content. */
export async function removeStalePartials(destination: string, keep: string, log: (message: string) => void): Promise<void> {
  const dir = path.dirname(destination)
  const prefix = `.${path.basename(destination)}.herd-`
  let names: string[] = []
  try {
    names = await fs.promises.readdir(dir)
  } catch {
    return
  }
  for (const name of names) {
    const full = path.join(dir, name)
    if (name.startsWith(prefix) && name.endsWith('.part') && full !== keep) {
      await fs.promises.rm(full, { force: true })
      log(`removed stale temporary file ${full}`)
    }
  }
}

/** What a destination's lock file says: which agent holds it, for which run, since when. */
interface LockHolder {
  pid: number
  run: string
  since: string
}

/** Whether `pid` is a live herd agent (its title, or the bootstrap naming agent-<hash>.mjs). */
async function isAgent(pid: number): Promise<boolean> {
  const cmdline = await fs.promises.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  return cmdline.split('\0')[0] === 'herd-agent' || cmdline.includes('agent-')
}

/**
 * One agent per destination, by a lock file created exclusively in the private working folder. A live
 * agent of the same run (an attempt whose connection dropped) is stopped; one of another run is never
 * touched: this run is refused, naming it. A lock whose agent is gone is taken over.
 */
export async function takeDestinationLock(destination: string, run: string, log: (message: string) => void): Promise<string> {
  const lock = path.resolve(`lock-${crypto.createHash('sha1').update(destination).digest('hex').slice(0, 16)}.json`)
  const mine: LockHolder = { pid: process.pid, run, since: new Date().toISOString() }
  for (let tries = 0; ; tries++) {
    try {
      await fs.promises.writeFile(lock, JSON.stringify(mine), { mode: 0o600, flag: 'wx' })
      return lock
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 3) throw err
    }
    let holder: LockHolder | undefined
    try {
      holder = JSON.parse(await fs.promises.readFile(lock, 'utf8')) as LockHolder
    } catch {}
    if (holder && holder.pid > 0 && holder.pid !== process.pid && (await isAgent(holder.pid))) {
      if (holder.run !== run) {
        throw new AgentError('busy', `another herd run is pushing to ${destination} (agent pid ${holder.pid} on this host, since ${holder.since}); wait for it to finish, or stop it and run again`)
      }
      log(`stopping an earlier agent (pid ${holder.pid}) still running for ${destination} (an earlier attempt of this run)`)
      try { process.kill(holder.pid, 'SIGTERM') } catch {}
      for (let i = 0; i < 50 && fs.existsSync(`/proc/${holder.pid}`); i++) await new Promise((r) => setTimeout(r, 100))
      try { process.kill(holder.pid, 'SIGKILL') } catch {}
    }
    await fs.promises.rm(lock, { force: true })
  }
}

/** Waits for the whole payload's SHA-256 and fails unless it is the runner's. */
export async function checkWhole(start: StartMessage, wholeHash: () => Promise<string>, log: (message: string) => void): Promise<void> {
  const began = Date.now()
  const actual = await wholeHash()
  if (actual !== start.sha256) throw new AgentError('checksum', `the downloaded ${start.tree ? "folder's payload" : 'file'}'s SHA-256 ${actual} differs from the runner's ${start.sha256}; the local ${start.tree ? 'folder' : 'file'} may have changed during the run`)
  log(`whole payload's SHA-256 checked ${((Date.now() - began) / 1000).toFixed(2)} s after the last piece`)
}

/** An identical file already in place gets what --mode, --owner and --group ask, in place: nothing moves. */
export async function retouchFile(start: StartMessage, owner: Owner, log: (message: string) => void): Promise<void> {
  if (start.attributes?.mode === undefined && owner.uid === undefined && owner.gid === undefined) return
  const fh = await fs.promises.open(start.destination, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  try {
    const st = await fh.stat()
    if ((owner.uid !== undefined && owner.uid !== st.uid) || (owner.gid !== undefined && owner.gid !== st.gid)) {
      await fh.chown(owner.uid ?? st.uid, owner.gid ?? st.gid).catch((err: NodeJS.ErrnoException) => { throw chownFailure(err, start.destination, owner) })
      log(`owner of the identical file set to ${owner.uid ?? st.uid}:${owner.gid ?? st.gid}`)
    }
    const mode = start.attributes?.mode ?? st.mode & 0o7777
    if ((st.mode & 0o7777) !== mode || owner.uid !== undefined || owner.gid !== undefined) await fh.chmod(mode)
  } finally {
    await fh.close()
  }
}

/** Moves the verified temporary file into place: mode, fsync, rename, fsync of the folder. */
export async function placeFile(partial: string, start: StartMessage, owner: Owner, log: (message: string) => void): Promise<void> {
  const hashed = Date.now()
  const target = await targetAttributes(start, owner)
  const fh = await fs.promises.open(partial, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW)
  try {
    if (target.uid !== undefined && target.gid !== undefined && (target.uid !== process.getuid?.() || target.gid !== process.getgid?.())) {
      await fh.chown(target.uid, target.gid).catch((err: NodeJS.ErrnoException) => {
        if (target.asked) throw chownFailure(err, start.destination, target)
        log(`kept this login's owner: the previous file's ${target.uid}:${target.gid} may not be set here (${err.code})`)
      })
    }
    // After chown, which clears setuid and setgid.
    await fh.chmod(target.mode)
    await fh.sync()
  } finally {
    await fh.close()
  }
  log(`written to disk (fsync) in ${((Date.now() - hashed) / 1000).toFixed(2)} s`)
  await fs.promises.rename(partial, start.destination)
  const dirHandle = await fs.promises.open(path.dirname(start.destination), 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
}

