// The one place that spells an option as the front end in use names it: every fix in a message names a
// flag the CLI has or an input the Action has, never an option that exists in neither.

/** Who runs the core: the `herd` command (the GitLab component runs it too) or the GitHub Action. */
export type FrontEnd = 'cli' | 'action'

/** Each option a message may name, by a neutral key: its CLI flag and its Action input (absent: the Action has none). */
const NAMES = {
  file: { cli: 'local file', action: 'file' },
  destination: { cli: 'remote file', action: 'destination' },
  hosts: { cli: 'hosts', action: 'hosts' },
  hostsFile: { cli: 'hosts file', action: 'hosts' },
  hostList: { cli: '--hostlist', action: 'hosts' },
  retry: { cli: '--retry', action: 'retry' },
  port: { cli: '--port', action: 'port' },
  remotePath: { cli: '--remote-path', action: 'remote-path' },
  logDir: { cli: '--log-dir', action: 'log-dir' },
  timeout: { cli: '--timeout', action: 'timeout' },
  concurrency: { cli: '--concurrency', action: 'concurrency' },
  identity: { cli: '--identity', action: 'ssh-key' },
  passphrase: { cli: 'HERD_SSH_PASSPHRASE', action: 'ssh-key-passphrase' },
  knownHosts: { cli: '--known-hosts', action: 'ssh-known-hosts' },
  hostKeyPolicy: { cli: '--accept-new-host-keys', action: 'ssh-strict' },
  acceptNew: { cli: '--accept-new-host-keys', action: 'ssh-strict: false' },
  noEncryption: { cli: '--no-encryption', action: 'encryption: false' },
  runnerVia: { cli: '--runner-via', action: 'runner-via' },
  stallTimeout: { cli: '--stall-timeout', action: 'stall-timeout' },
  sshClient: { cli: '--ssh', action: 'ssh-client' },
  postCommand: { cli: '--post-command', action: 'post-command' },
  postBatch: { cli: '--post-batch', action: 'post-batch' },
  user: { cli: '--user', action: 'username' },
  node: { cli: '--node', action: undefined },
  sshConfig: { cli: '--ssh-config', action: undefined },
} as const satisfies Record<string, { cli: string; action: string | undefined }>

export type OptionKey = keyof typeof NAMES

/** The option as `frontEnd` spells it; undefined where that front end has no such option. */
export function optionName(key: OptionKey, frontEnd: FrontEnd = 'cli'): string | undefined {
  return NAMES[key][frontEnd]
}

/** Like optionName, for options every front end has. */
export function optionNamed(key: Exclude<OptionKey, 'node' | 'sshConfig'>, frontEnd: FrontEnd = 'cli'): string {
  return NAMES[key][frontEnd]
}

/** Every name of every front end, for the tests that hold them to the CLI's --help and action.yml. */
export function allOptionNames(frontEnd: FrontEnd): string[] {
  const names: (string | undefined)[] = Object.values(NAMES).map((n) => n[frontEnd])
  return names.filter((n): n is string => n !== undefined)
}

/** The option set to a value, as the user of that front end writes it: `--runner-via ssh`, `runner-via: ssh`. */
export function optionSetTo(key: Exclude<OptionKey, 'node' | 'sshConfig'>, value: string, frontEnd: FrontEnd = 'cli'): string {
  return frontEnd === 'cli' ? `${NAMES[key].cli} ${value}` : `${NAMES[key].action}: ${value}`
}
