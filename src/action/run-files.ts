// What the Action's run writes before it starts: the secrets masked, and a private folder in the runner's
// temp folder with the key and known_hosts (0600, for this run only) and the logs' default place.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as core from '@actions/core'
import type { ActionSettings } from './settings.js'
import { STATE } from './state.js'

/** Where this run's files are. */
export interface RunFiles {
  /** Private folder (0700) for the key and known_hosts files; removed by the run and again by the post step. */
  secretsDir: string
  /** The `ssh-key` input written 0600 inside secretsDir; absent when no key was given. */
  sshKeyPath?: string
  /** The `ssh-known-hosts` input written inside secretsDir; absent when none was given. */
  knownHostsPath?: string
  /** One log file per host and report.json: the `log-dir` input, else a folder of this run. */
  logDir: string
  /** The JSON report, inside logDir. */
  reportPath: string
}

/** Masks the key whole and line by line (the runner masks line by line in multi-line values), and the passphrase. */
export function maskSecrets(s: Pick<ActionSettings, 'sshKey' | 'sshKeyPassphrase'>): void {
  if (s.sshKey) {
    core.setSecret(s.sshKey)
    for (const line of s.sshKey.split('\n')) {
      if (line.length >= 8 && !line.startsWith('-----')) core.setSecret(line)
    }
  }
  if (s.sshKeyPassphrase) core.setSecret(s.sshKeyPassphrase)
}

/** Creates the run's private folder, writes the key and known_hosts there, and saves its place for the post step. */
export function writeRunFiles(s: ActionSettings): RunFiles {
  const tempRoot = process.env.RUNNER_TEMP || os.tmpdir()
  fs.mkdirSync(tempRoot, { recursive: true })
  const runDir = fs.mkdtempSync(path.join(tempRoot, 'herd-action-'))
  const secretsDir = path.join(runDir, 'ssh')
  core.saveState(STATE.secretsDir, secretsDir)
  let sshKeyPath: string | undefined
  let knownHostsPath: string | undefined
  if (s.sshKey || s.knownHosts) fs.mkdirSync(secretsDir, { mode: 0o700 })
  if (s.sshKey) {
    sshKeyPath = path.join(secretsDir, 'id_key')
    fs.writeFileSync(sshKeyPath, s.sshKey, { mode: 0o600, flag: 'wx' })
  }
  if (s.knownHosts) {
    knownHostsPath = path.join(secretsDir, 'known_hosts')
    fs.writeFileSync(knownHostsPath, s.knownHosts.replace(/\r\n?/g, '\n') + '\n', { mode: 0o600, flag: 'wx' })
  }
  const logDir = s.logDir ?? path.join(runDir, 'logs')
  return { secretsDir, sshKeyPath, knownHostsPath, logDir, reportPath: path.join(logDir, 'report.json') }
}
