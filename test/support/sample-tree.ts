// The folder the deploy tests push, and a listing of a tree that says what a user would compare.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { walkTree } from '../../src/engine/tree.js'

/**
 * Nested folders, an empty folder, a dotfile, a relative and a dangling symbolic link, an executable,
 * a 0600 file, a name longer than tar's 100 bytes, and `dataBytes` of random data; `variant` changes
 * the content of every file so two variants are two different trees.
 */
export function makeSampleTree(root: string, variant = 'a', dataBytes = 300_000): void {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true })
  fs.mkdirSync(path.join(root, 'lib/deep/er'), { recursive: true })
  fs.mkdirSync(path.join(root, 'empty'))
  fs.writeFileSync(path.join(root, '.env'), `VARIANT=${variant}\n`)
  fs.writeFileSync(path.join(root, 'bin/run'), `#!/bin/sh\necho ${variant}\n`)
  fs.chmodSync(path.join(root, 'bin/run'), 0o755)
  fs.writeFileSync(path.join(root, 'secret.key'), crypto.randomBytes(64))
  fs.chmodSync(path.join(root, 'secret.key'), 0o600)
  fs.writeFileSync(path.join(root, 'lib/deep/er/data.bin'), crypto.randomBytes(dataBytes))
  fs.writeFileSync(path.join(root, `lib/${'n'.repeat(120)}.txt`), variant)
  fs.symlinkSync('../bin/run', path.join(root, 'lib/run-link'))
  fs.symlinkSync('/nonexistent/target', path.join(root, 'dangling'))
}

/** One line per entry: type, mode, size, link target, path, and a file's sha256. */
export function treeListing(root: string): string {
  return walkTree(root)
    .map((e) => `${e.type} ${(fs.lstatSync(path.join(root, e.path)).mode & 0o7777).toString(8)} ${e.size} ${e.linkname} ${e.path} ${e.type === 'file' ? crypto.createHash('sha256').update(fs.readFileSync(path.join(root, e.path))).digest('hex') : ''}`)
    .join('\n')
}
