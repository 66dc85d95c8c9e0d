// Builds, checks that the committed dist/ matches the sources, and runs every test with node's runner.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
run('node', ['scripts/check-dist.js'])
const only = process.argv.slice(2)
const files = only.length
  ? only.map((f) => (f.endsWith('.js') ? f : `build/test/${f}.test.js`))
  : fs.readdirSync(path.join(root, 'build/test')).filter((f) => f.endsWith('.test.js')).sort().map((f) => `build/test/${f}`)
run('node', ['--test', '--test-concurrency=1', '--test-timeout=600000', ...files])
