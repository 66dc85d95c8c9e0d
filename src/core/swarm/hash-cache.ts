// The runner's hashes of files it pushed before, so that pushing the same file again (a re-run, another
// fleet) does not read and hash it again: about 1.6 s per GiB on two cores, 25 minutes for 2 TB.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** What hashing a file's contents yields: the same for every run (the torrent's per-run nonce is not in it). */
export interface ContentHashes {
  size: number
  pieceLength: number
  /** SHA-1 of every piece, 20 bytes each. */
  pieceHashes: Buffer
  sha256: string
}

/** Files smaller than this are hashed each time: it takes less than reading a cache entry would save. */
export const CACHED_FROM_BYTES = 16 * 1024 * 1024
/** Entries kept (the oldest go first); each is 20 bytes per piece, at most a few MB. */
const KEEP = 32
/**
 * A file changed this little before its hashing began is not kept (git's "racy clean" rule): where the
 * kernel or the file system keeps times coarser than its writes, a write in the same tick as the hashing
 * would leave the times unchanged.
 */
const SETTLED_NS = 2_000_000_000n
/** Pieces read again and checked on every hit: the first, the last and a few at random. */
const SPOT_CHECKS = 4

/** ~/.cache/herd-action/hashes: the user's own, like the hosts' ~/.cache/herd-action; none without a home. */
export function hashCacheDir(): string | undefined {
  const home = os.homedir()
  return path.isAbsolute(home) ? path.join(home, '.cache', 'herd-action', 'hashes') : undefined
}

/**
 * A file's identity as the file system keeps it: the same device and inode, size, modification and
 * status-change times (nanoseconds) mean the same contents. Any write changes the status-change time,
 * which no user can set back; entries are kept only for files that had settled (SETTLED_NS), and a hit is
 * spot-checked (SPOT_CHECKS). This matters: a host that holds a file with the SHA-256 given is done
 * without a byte moving, so stale hashes would leave an old file in place as if it were the new one.
 */
function identity(st: fs.BigIntStats, pieceLength: number): string {
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, pieceLength].join(':')
}

function entryPath(dir: string, key: string): string {
  return path.join(dir, crypto.createHash('sha256').update(key).digest('hex').slice(0, 32) + '.json')
}

/**
 * The hashes of the file open as `handle` (`st`: its stat) from an earlier run, if its identity has not
 * changed since and the spot-checked pieces still match; a mismatching entry is removed.
 */
export async function cachedHashes(handle: fs.promises.FileHandle, st: fs.BigIntStats, pieceLength: number, dir = hashCacheDir()): Promise<ContentHashes | undefined> {
  if (!dir || st.size < CACHED_FROM_BYTES) return undefined
  const key = identity(st, pieceLength)
  const file = entryPath(dir, key)
  try {
    const entry = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { key: string; sha256: string; pieces: string }
    const pieceHashes = Buffer.from(entry.pieces, 'base64')
    const size = Number(st.size)
    const count = Math.ceil(size / pieceLength)
    if (entry.key !== key || !/^[0-9a-f]{64}$/.test(entry.sha256) || pieceHashes.length !== count * 20) return undefined
    const spots = new Set([0, count - 1, ...Array.from({ length: SPOT_CHECKS - 2 }, () => crypto.randomInt(count))])
    const buf = Buffer.alloc(pieceLength)
    for (const i of spots) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(pieceLength, size - i * pieceLength), i * pieceLength)
      if (!crypto.createHash('sha1').update(buf.subarray(0, bytesRead)).digest().equals(pieceHashes.subarray(i * 20, i * 20 + 20))) {
        await fs.promises.rm(file, { force: true })
        return undefined
      }
    }
    return { size, pieceLength, pieceHashes, sha256: entry.sha256 }
  } catch {
    return undefined
  }
}

/**
 * Keeps `hashes` for `handle`'s file, if the file is still what was hashed (`before`: its stat when the
 * hashing began). Written to a new file of its own and renamed into place; a failure only costs the cache.
 */
export async function keepHashes(handle: fs.promises.FileHandle, before: fs.BigIntStats, began: bigint, hashes: ContentHashes, dir = hashCacheDir()): Promise<void> {
  if (!dir || hashes.size < CACHED_FROM_BYTES) return
  // Not settled when the hashing began: its times may not show a write made then.
  if (began - before.mtimeNs < SETTLED_NS || began - before.ctimeNs < SETTLED_NS) return
  try {
    const now = await handle.stat({ bigint: true })
    const key = identity(now, hashes.pieceLength)
    if (key !== identity(before, hashes.pieceLength)) return // written to while it was read
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 })
    const target = entryPath(dir, key)
    const temp = `${target}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`
    // 'wx': created here and now, never through a link someone left at that name.
    await fs.promises.writeFile(temp, JSON.stringify({ key, sha256: hashes.sha256, pieces: hashes.pieceHashes.toString('base64') }), { flag: 'wx', mode: 0o600 })
    await fs.promises.rename(temp, target)
    await prune(dir)
  } catch {}
}

/** Removes all but the KEEP most recently written entries. */
async function prune(dir: string): Promise<void> {
  const names = (await fs.promises.readdir(dir)).filter((n) => n.endsWith('.json'))
  if (names.length <= KEEP) return
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await fs.promises.stat(path.join(dir, n))).mtimeMs })))
  aged.sort((a, b) => b.t - a.t)
  await Promise.all(aged.slice(KEEP).map(({ n }) => fs.promises.rm(path.join(dir, n), { force: true })))
}
