// Reads the Action's inputs into ActionSettings, writes the SSH secrets to a private folder, and maps them to the core's options.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as core from '@actions/core'
import ssh2 from 'ssh2'
import { PlanError, type HerdOptions } from '../core/plan.js'
import { ACTION_INPUT_FOR_OPTION } from '../core/front-end.js'
import type { ActionSettings, UploadLogs } from './settings.js'
import { STATE } from './state.js'

/** A mistake in one input: the message names the input and the fix. */
export class InputError extends Error {
  constructor(readonly input: string, message: string) {
    super(`${input}: ${message}`)
  }
}

const UPLOAD_LOGS: readonly UploadLogs[] = ['on-failure', 'always', 'never']
/** Characters the artifact service refuses in a name. */
const ARTIFACT_NAME_FORBIDDEN = /[":<>|*?\r\n\\/]/

function booleanInput(name: string, fallback: boolean): boolean {
  const text = core.getInput(name)
  if (text === '') return fallback
  if (/^(true|yes|on)$/i.test(text)) return true
  if (/^(false|no|off)$/i.test(text)) return false
  throw new InputError(name, `'${text}' is not true or false`)
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

/** `hosts` is a hosts file's path when it is one line naming an existing file; else a list of hosts. */
function hostsInput(): Pick<ActionSettings, 'hostsFile' | 'hostsText' | 'hostList'> {
  const text = core.getInput('hosts')
  if (text === '') throw new InputError('hosts', 'required; list the hosts one per line, or give the path of a hosts file')
  if (/[\r\n]/.test(text)) return { hostsText: text }
  if (isFile(text)) return { hostsFile: text }
  if (text.includes('/')) throw new InputError('hosts', `${text} is not a file; give the path of a hosts file (relative to the workspace) or list the hosts one per line`)
  return { hostList: text }
}

/** The key exactly as ssh reads it: LF line ends, one final newline. */
function normalizedKey(text: string): string {
  return text.replace(/\r\n?/g, '\n').trim() + '\n'
}

/** Masks the key whole and line by line (the runner masks line by line in multi-line values). */
function maskKey(key: string): void {
  core.setSecret(key)
  for (const line of key.split('\n')) {
    if (line.length >= 8 && !line.startsWith('-----')) core.setSecret(line)
  }
}

function checkKey(key: string, passphrase: string | undefined): void {
  const parsed = ssh2.utils.parseKey(key, passphrase)
  if (parsed instanceof Error) {
    if (/passphrase given/i.test(parsed.message)) throw new InputError('ssh-key', 'the key is encrypted; set ssh-key-passphrase (from a secret) too')
    if (/bad passphrase|decrypt/i.test(parsed.message)) throw new InputError('ssh-key-passphrase', 'does not decrypt ssh-key; check the secret')
    throw new InputError('ssh-key', `is not a private key this action can read (${parsed.message}); paste the whole private key file, BEGIN and END lines included`)
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed
  if (!first?.isPrivateKey()) throw new InputError('ssh-key', 'is a public key; give the private key (the file without .pub)')
}

function wholeNumber(name: string, min: number, max: number): number | undefined {
  const text = core.getInput(name)
  if (text === '') return undefined
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new InputError(name, `'${text}' is not a whole number from ${min} to ${max}`)
  return Number(text)
}

/** Reads and checks every input; writes ssh-key and ssh-known-hosts to a private folder (saved for the post step). */
export function getInputs(): ActionSettings {
  const file = core.getInput('file')
  if (file === '') throw new InputError('file', 'required; give the path of the file to push')
  const destination = core.getInput('destination')
  if (destination === '') throw new InputError('destination', 'required; give the absolute path of the file on the hosts')
  const hosts = hostsInput()

  // Secrets are masked before anything else can print them.
  const keyInput = core.getInput('ssh-key')
  const sshKey = keyInput === '' ? undefined : normalizedKey(keyInput)
  if (sshKey) maskKey(sshKey)
  const passphrase = core.getInput('ssh-key-passphrase', { trimWhitespace: false }) || undefined
  if (passphrase) core.setSecret(passphrase)
  if (sshKey) checkKey(sshKey, passphrase)
  const knownHosts = core.getInput('ssh-known-hosts')

  const uploadLogs = (core.getInput('upload-logs') || 'on-failure').toLowerCase() as UploadLogs
  if (!UPLOAD_LOGS.includes(uploadLogs)) throw new InputError('upload-logs', `'${core.getInput('upload-logs')}' is not one of ${UPLOAD_LOGS.join(', ')}`)
  const artifactName = core.getInput('artifact-name') || `herd-logs-${process.env.GITHUB_JOB || 'run'}`
  if (ARTIFACT_NAME_FORBIDDEN.test(artifactName)) throw new InputError('artifact-name', `'${artifactName}' contains one of " : < > | * ? \\ / or a line break; choose a name without them`)
  const artifactRetentionDays = wholeNumber('artifact-retention-days', 1, 90)
  const hostKeyPolicy = booleanInput('ssh-strict', true) ? 'strict' : 'accept-new'
  const encrypt = booleanInput('encryption', true)

  // Everything this run writes lives in one private folder under the runner's temp folder.
  const tempRoot = process.env.RUNNER_TEMP || os.tmpdir()
  fs.mkdirSync(tempRoot, { recursive: true })
  const runDir = fs.mkdtempSync(path.join(tempRoot, 'herd-action-'))
  const secretsDir = path.join(runDir, 'ssh')
  core.saveState(STATE.secretsDir, secretsDir)
  let sshKeyPath: string | undefined
  let knownHostsPath: string | undefined
  if (sshKey || knownHosts) fs.mkdirSync(secretsDir, { mode: 0o700 })
  if (sshKey) {
    sshKeyPath = path.join(secretsDir, 'id_key')
    fs.writeFileSync(sshKeyPath, sshKey, { mode: 0o600, flag: 'wx' })
  }
  if (knownHosts) {
    knownHostsPath = path.join(secretsDir, 'known_hosts')
    fs.writeFileSync(knownHostsPath, knownHosts.replace(/\r\n?/g, '\n') + '\n', { mode: 0o600, flag: 'wx' })
  }
  const logDir = path.resolve(core.getInput('log-dir') || path.join(runDir, 'logs'))

  return {
    file,
    destination,
    ...hosts,
    retry: core.getInput('retry'),
    port: core.getInput('port'),
    remotePath: core.getInput('remote-path'),
    timeout: core.getInput('timeout'),
    concurrency: core.getInput('concurrency'),
    logDir,
    reportPath: path.join(logDir, 'report.json'),
    secretsDir,
    sshKeyPath,
    sshKeyPassphrase: passphrase,
    knownHostsPath,
    hostKeyPolicy,
    encrypt,
    runnerVia: core.getInput('runner-via'),
    stallTimeout: core.getInput('stall-timeout'),
    sshClient: core.getInput('ssh-client'),
    postCommand: core.getInput('post-command'),
    postBatch: core.getInput('post-batch'),
    releases: core.getInput('releases'),
    mode: core.getInput('mode'),
    owner: core.getInput('owner'),
    group: core.getInput('group'),
    limitRate: core.getInput('limit-rate'),
    username: core.getInput('username') || undefined,
    uploadLogs,
    artifactName,
    artifactRetentionDays,
  }
}

/** The core's options for these settings (empty inputs fall back to the core's defaults). */
export function toHerdOptions(s: ActionSettings): HerdOptions {
  return {
    file: s.file,
    destination: s.destination,
    hostsFile: s.hostsFile,
    hostsText: s.hostsText,
    hostList: s.hostList,
    retry: s.retry || undefined,
    port: s.port || undefined,
    remotePath: s.remotePath || undefined,
    timeout: s.timeout || undefined,
    concurrency: s.concurrency || undefined,
    logDir: s.logDir,
    identityFiles: s.sshKeyPath ? [s.sshKeyPath] : undefined,
    knownHostsFiles: s.knownHostsPath ? [s.knownHostsPath] : undefined,
    hostKeyPolicy: s.hostKeyPolicy,
    encrypt: s.encrypt,
    runnerVia: s.runnerVia || undefined,
    stallTimeout: s.stallTimeout || undefined,
    sshClient: s.sshClient || undefined,
    postCommand: s.postCommand || undefined,
    postBatch: s.postBatch || undefined,
    releases: s.releases || undefined,
    mode: s.mode || undefined,
    owner: s.owner || undefined,
    group: s.group || undefined,
    limitRate: s.limitRate || undefined,
    user: s.username,
    passphrase: s.sshKeyPassphrase,
    frontEnd: 'action',
  }
}

/** A plan error worded with the Action's input names. */
export function planErrorMessage(err: PlanError, s?: Pick<ActionSettings, 'hostsFile'>): string {
  const detail = err.message.startsWith(`${err.input}: `) ? err.message.slice(err.input.length + 2) : err.message
  if (s?.hostsFile !== undefined && err.input === s.hostsFile) return `hosts: ${s.hostsFile}: ${detail}`
  const input = ACTION_INPUT_FOR_OPTION[err.input]
  return input ? `${input}: ${detail}` : err.message
}
