// The destination side of an agent: checks before any byte moves, the temporary file, the lock, the final rename.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import type { AgentErrorCode, StartMessage } from '../core/protocol.js'

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

/** Checks what can be checked before any byte moves: the folder, the destination, write access. */
export async function preflight(start: StartMessage): Promise<'identical' | 'fetch'> {
  const dir = path.dirname(start.destination)
  let dirStat: fs.Stats
  try {
    dirStat = await fs.promises.stat(dir)
  } catch (err) {
    throw fsFailure(err as NodeJS.ErrnoException, `folder ${dir}`)
  }
  if (!dirStat.isDirectory()) throw new AgentError('no-folder', `${dir} is not a folder; choose a destination inside an existing folder`)
  let destStat: fs.Stats | undefined
  try {
    destStat = await fs.promises.stat(start.destination)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsFailure(err as NodeJS.ErrnoException, start.destination)
  }
  if (destStat && !destStat.isFile()) throw new AgentError('not-a-file', `${start.destination} exists and is not a regular file; remove it or choose another destination`)
  try {
    await fs.promises.access(dir, fs.constants.W_OK)
  } catch (err) {
    throw fsFailure(err as NodeJS.ErrnoException, `folder ${dir}`)
  }
  if (destStat && destStat.size === start.size && (await sha256Of(start.destination)) === start.sha256) {
    if ((destStat.mode & 0o7777) !== start.mode) await fs.promises.chmod(start.destination, start.mode)
    return 'identical'
  }
  return 'fetch'
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
  const needed = start.size - Math.min(resumed, start.size)
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

/** One agent per destination: a leftover agent from a dropped connection is stopped before we start. */
export async function takeDestinationLock(destination: string, log: (message: string) => void): Promise<string> {
  const lock = path.resolve(`lock-${crypto.createHash('sha1').update(destination).digest('hex').slice(0, 16)}.pid`)
  try {
    const pid = Number((await fs.promises.readFile(lock, 'utf8')).trim())
    if (pid > 0 && pid !== process.pid) {
      const cmdline = await fs.promises.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      // An agent's command line is its title (main sets it), or the bootstrap naming agent-<hash>.mjs.
      if (cmdline.split('\0')[0] === 'herd-agent' || cmdline.includes('agent-')) {
        log(`stopping an earlier agent (pid ${pid}) still running for ${destination}`)
        try { process.kill(pid, 'SIGTERM') } catch {}
        for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100))
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
  } catch {}
  await fs.promises.writeFile(lock, String(process.pid), { mode: 0o600 })
  return lock
}

/** Moves the verified temporary file into place: mode, fsync, rename, fsync of the folder. */
export async function placeFile(partial: string, start: StartMessage, wholeHash: () => Promise<string>, log: (message: string) => void): Promise<void> {
  const began = Date.now()
  const actual = await wholeHash()
  const hashed = Date.now()
  if (actual !== start.sha256) throw new AgentError('checksum', `the downloaded file's SHA-256 ${actual} differs from the runner's ${start.sha256}; the local file may have changed during the run`)
  const fh = await fs.promises.open(partial, 'r+')
  try {
    await fh.chmod(start.mode)
    await fh.sync()
  } finally {
    await fh.close()
  }
  log(`whole file's SHA-256 checked ${((hashed - began) / 1000).toFixed(2)} s after the last piece, written to disk (fsync) in ${((Date.now() - hashed) / 1000).toFixed(2)} s`)
  await fs.promises.rename(partial, start.destination)
  const dirHandle = await fs.promises.open(path.dirname(start.destination), 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
}

