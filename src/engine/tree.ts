// A folder as one payload: a sorted walk packed into a tar stream, and the manifest digest both sides compute.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { once } from 'node:events'
import tar from 'tar-stream'

/** One thing in a folder, as herd carries it: files with content, folders, and symbolic links as links. */
export interface TreeEntry {
  /** Path below the folder, `/`-separated, never empty, `.` or `..`. */
  path: string
  type: 'file' | 'directory' | 'symlink'
  /** Permission bits as they land (see `deliveredMode`). */
  mode: number
  /** Bytes of a file's content (0 for the rest). */
  size: number
  /** A symbolic link's target, verbatim (0 for the rest: ''). */
  linkname: string
}

/** Something a folder holds that herd does not carry, or that changed while it was read. */
export class TreeError extends Error {}

/**
 * Mode of a new file or folder at the destination: the local mode without setuid, setgid, sticky, or
 * write for group and others, so a 0666 file from a umask-0000 CI job lands 0644 and 0600 stays 0600.
 */
export function deliveredMode(localMode: number): number {
  return localMode & 0o755
}

/**
 * Every entry below `root` (not root itself), parents before children, names in one fixed order.
 * Synchronous: it reads only metadata, and the runner checks a folder with it before any host is touched.
 */
export function walkTree(root: string): TreeEntry[] {
  const entries: TreeEntry[] = []
  const visit = (dir: string, prefix: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name)
      const rel = prefix ? `${prefix}/${name}` : name
      const st = fs.lstatSync(full)
      if (st.isDirectory()) {
        entries.push({ path: rel, type: 'directory', mode: deliveredMode(st.mode), size: 0, linkname: '' })
        visit(full, rel)
      } else if (st.isFile()) {
        entries.push({ path: rel, type: 'file', mode: deliveredMode(st.mode), size: st.size, linkname: '' })
      } else if (st.isSymbolicLink()) {
        entries.push({ path: rel, type: 'symlink', mode: 0o777, size: 0, linkname: fs.readlinkSync(full) })
      } else {
        throw new TreeError(`${full} is a socket, pipe or device; herd carries files, folders and symbolic links: remove it or push another folder`)
      }
    }
  }
  visit(root, '')
  return entries
}

/** About the tar's size for these entries (exact unless long names need extended headers): for progress. */
export function payloadSizeOf(entries: TreeEntry[]): number {
  const block = (n: number) => Math.ceil(n / 512) * 512
  return entries.reduce((sum, e) => sum + 512 + block(e.size) + (e.path.length > 99 || e.linkname.length > 99 ? 1024 : 0), 1024)
}

/** The manifest line of one entry: what must match for a tree to count as identical. */
function manifestLine(e: TreeEntry, sha256: string): string {
  return `${e.type} ${e.mode.toString(8)} ${e.size} ${sha256} ${JSON.stringify(e.path)} ${JSON.stringify(e.linkname)}\n`
}

const CHUNK = 1024 * 1024

/** Reads a file of the tree exactly `size` bytes long (never through a link), handing each chunk on. */
async function readExactly(full: string, size: number, onChunk: (chunk: Buffer) => Promise<void> | void): Promise<string> {
  const hash = crypto.createHash('sha256')
  const fh = await fs.promises.open(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  try {
    let position = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, size - position + 1)))
      const { bytesRead } = await fh.read(buf, 0, buf.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      if (position > size) break
      const chunk = buf.subarray(0, bytesRead)
      hash.update(chunk)
      await onChunk(chunk)
    }
    if (position !== size) throw new TreeError(`${full} changed size while it was read (${size} bytes, then ${position}); push a folder that is not being written`)
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

/** SHA-256 over the manifest of the tree at `root` (types, modes, sizes, contents, link targets). */
export async function treeDigest(root: string): Promise<string> {
  const digest = crypto.createHash('sha256')
  for (const e of walkTree(root)) {
    const sha = e.type === 'file' ? await readExactly(path.join(root, e.path), e.size, () => {}) : '-'
    digest.update(manifestLine(e, sha))
  }
  return digest.digest('hex')
}

/**
 * Packs the tree at `root` into a tar file at `out` (created exclusively, 0600) in one read, and
 * returns the manifest digest. Headers carry no owner and no time: a tree is its names, modes, link
 * targets and contents, so a rebuild with the same content is the same tree.
 */
export async function packTree(root: string, out: string): Promise<{ digest: string; entries: number }> {
  const entries = walkTree(root)
  const digest = crypto.createHash('sha256')
  const pack = tar.pack()
  const sink = fs.createWriteStream(out, { flags: 'wx', mode: 0o600 })
  const written = once(sink, 'close')
  let failed: Error | undefined
  sink.on('error', (err) => (failed = err))
  pack.on('error', (err: Error) => (failed = err))
  pack.pipe(sink)
  try {
    for (const e of entries) {
      if (failed) throw failed
      const header = { name: e.type === 'directory' ? `${e.path}/` : e.path, type: e.type, mode: e.mode, size: e.size, linkname: e.linkname || undefined, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }
      if (e.type !== 'file') {
        pack.entry(header)
        digest.update(manifestLine(e, '-'))
        continue
      }
      const entry = pack.entry(header)
      const ended = new Promise<void>((resolve, reject) => {
        entry.on('finish', () => resolve())
        entry.on('error', reject)
        entry.on('close', () => resolve())
      })
      const sha = await readExactly(path.join(root, e.path), e.size, async (chunk) => {
        if (!entry.write(chunk)) await once(entry, 'drain')
      })
      entry.end(undefined)
      await ended
      digest.update(manifestLine(e, sha))
    }
    pack.finalize()
    await written
    if (failed) throw failed
  } catch (err) {
    pack.destroy()
    sink.destroy()
    await fs.promises.rm(out, { force: true })
    throw err
  }
  return { digest: digest.digest('hex'), entries: entries.length }
}
