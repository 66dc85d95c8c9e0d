// Unpacks a verified tree payload into a fresh, private folder: never outside it, never through a link.
import fs from 'node:fs'
import path from 'node:path'
import tar from 'tar-stream'
import { AgentError, type Owner } from './destination.js'
import { chownFailure } from './owner.js'

/** The parts of an entry's name, or an error for a name that could leave the folder. */
function partsOf(name: string): string[] {
  const parts = name.replace(/\/+$/, '').split('/')
  if (name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new AgentError('internal', `the folder's payload holds an unsafe name ${JSON.stringify(name)}; nothing was placed`)
  }
  return parts
}

/** fsync of a folder: its entries are on disk, not only in the page cache. */
export async function syncFolder(folder: string): Promise<void> {
  const fh = await fs.promises.open(folder, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Unpacks the tar at `payload` into `staging`, a folder this agent has just created empty. Files are
 * created exclusively without following links, written, synced and given their mode; a folder's mode is
 * set last (a read-only folder must stay writable while its entries go in). Returns the entry count.
 */
export async function unpackTree(payload: string, staging: string, owner: Owner): Promise<number> {
  const folders = new Set<string>([''])
  const modes: [string, number][] = []
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants
  const chown = async (full: string) => {
    if (owner.uid !== undefined || owner.gid !== undefined) await fs.promises.lchown(full, owner.uid ?? -1, owner.gid ?? -1).catch((err: NodeJS.ErrnoException) => { throw chownFailure(err, full, owner) })
  }
  const extract = tar.extract()
  const handle = await fs.promises.open(payload, fs.constants.O_RDONLY | O_NOFOLLOW)
  const source = handle.createReadStream({ highWaterMark: 1024 * 1024 })
  source.on('error', (err) => extract.destroy(err))
  source.pipe(extract)
  let count = 0
  try {
    for await (const entry of extract) {
      const { header } = entry
      const parts = partsOf(header.name)
      const rel = parts.join('/')
      // Each entry goes only into a folder this unpacking made: never below a link it just created.
      if (!folders.has(parts.slice(0, -1).join('/'))) throw new AgentError('internal', `the folder's payload puts ${JSON.stringify(rel)} below something that is not one of its folders; nothing was placed`)
      const full = path.join(staging, ...parts)
      if (header.type === 'directory') {
        await fs.promises.mkdir(full, { mode: 0o700 })
        await chown(full)
        folders.add(rel)
        modes.push([full, header.mode ?? 0o755])
        entry.resume()
      } else if (header.type === 'symlink') {
        await fs.promises.symlink(header.linkname ?? '', full)
        await chown(full)
        entry.resume()
      } else if (header.type === 'file') {
        const fh = await fs.promises.open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        try {
          for await (const chunk of entry) {
            const buf = chunk as Buffer
            for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off)).bytesWritten
          }
          await chown(full)
          // After chown, which clears setuid and setgid; the umask never applies to an explicit chmod.
          await fh.chmod(header.mode ?? 0o644)
          await fh.sync()
        } finally {
          await fh.close()
        }
      } else {
        throw new AgentError('internal', `the folder's payload holds a ${header.type} (${JSON.stringify(rel)}), which herd never sends; nothing was placed`)
      }
      count++
    }
  } finally {
    source.destroy()
  }
  // Deepest first; each folder synced so its entries outlive a crash once the switch has happened.
  for (const [full, mode] of modes.reverse()) {
    await syncFolder(full)
    await fs.promises.chmod(full, mode)
  }
  await chown(staging)
  await syncFolder(staging)
  return count
}
