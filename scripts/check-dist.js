// Rebuilds dist/ and fails when it differs from what is committed: dist/ is what the Action and npx run.
import { spawnSync } from 'node:child_process'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const sh = (cmd, args) => spawnSync(cmd, args, { cwd: root, encoding: 'utf8' })
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' })
if (build.status !== 0) process.exit(build.status ?? 1)
const inGit = sh('git', ['rev-parse', '--is-inside-work-tree']).stdout.trim() === 'true'
if (!inGit) process.exit(0)
const diff = sh('git', ['status', '--porcelain', '--', 'dist'])
if (diff.stdout.trim() !== '') {
  console.error('check-dist: dist/ is stale or has untracked files; run `npm run build` and commit dist/:\n' + diff.stdout)
  process.exit(1)
}
console.log('check-dist: dist/ matches the sources')
