// Checks that a release tag names the version every front end declares, and prints it for the release jobs.
// Usage: node scripts/release-version.js TAG   (TAG is v1.2.3 or 1.2.3)
// Prints VERSION=1.2.3, MAJOR_TAG=v1 and PRERELEASE=false (true for v1.2.3-rc.1: published under npm's `next`
// tag, and the major tag is not moved); GitHub's $GITHUB_OUTPUT and GitLab's dotenv both read these lines;
// exits 2 with one line naming the file to fix when the tag, package.json and the component disagree.
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const tag = process.argv[2] ?? ''
const fail = (message) => {
  process.stderr.write(`release: ${message}\n`)
  process.exit(2)
}
const m = /^v?((\d+)\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(tag)
if (!m) fail(`'${tag}' is not a release tag; tag the commit v<major>.<minor>.<patch>, e.g. v1.2.3`)
const [, version, major] = m
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
if (pkg.version !== version) fail(`tag ${tag} but package.json says ${pkg.version}; set "version": "${version}" in package.json and tag again`)
// The component runs herd-action@<herd-version> by default: it must be the version being released.
const component = fs.readFileSync(path.join(root, 'templates', 'herd.yml'), 'utf8')
const pinned = /^ {4}herd-version:\n(?: {6}.*\n)*? {6}default: '?([^'\n]+)'?$/m.exec(component)?.[1]
if (pinned !== version) fail(`tag ${tag} but templates/herd.yml runs herd-action@${pinned} by default; set herd-version's default to ${version}`)
process.stdout.write(`VERSION=${version}\nMAJOR_TAG=v${major}\nPRERELEASE=${version.includes('-')}\n`)
