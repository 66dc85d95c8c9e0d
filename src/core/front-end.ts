// How each front end names what a fix asks for, so every message names a flag, input or variable that exists where herd runs.

/** The herd command, the GitHub Action, and the GitLab CI/CD component (which runs the command for its job). */
export type FrontEnd = 'cli' | 'action' | 'gitlab'

export const FRONT_ENDS: readonly FrontEnd[] = ['cli', 'action', 'gitlab']

/** The words of one front end for the fixes the core suggests. */
export interface FixWords {
  /** The input a missing key is reported under. */
  keyInput: string
  /** What was looked at when no key was found. */
  noKey: string
  /** How to give a key. */
  giveKey: string
  /** Where an encrypted key's passphrase goes. */
  passphrase: string
  /** How to trust a host's key the first time it is seen. */
  acceptNew: string
  /** How to add a host's key; `keyscan` is the ssh-keyscan command line, `file` the known_hosts file herd read. */
  addHostKey(keyscan: string, file: string): string
  /** How to set one of herd's options here (`--remote-path` → `the remote-path input`); undefined where it can't be set. */
  option(flag: string): string | undefined
}

/** The core names options as the command line spells them; the Action's users know its input names. */
export const ACTION_INPUT_FOR_OPTION: Readonly<Record<string, string>> = {
  'local file': 'file',
  'remote file': 'destination',
  hosts: 'hosts',
  'hosts file': 'hosts',
  '--retry': 'retry',
  '--port': 'port',
  '--remote-path': 'remote-path',
  '--log-dir': 'log-dir',
  '--timeout': 'timeout',
  '--concurrency': 'concurrency',
  '--identity': 'ssh-key',
  '--known-hosts': 'ssh-known-hosts',
  'host key policy': 'ssh-strict',
  '--runner-via': 'runner-via',
  '--stall-timeout': 'stall-timeout',
  '--ssh': 'ssh-client',
  '--post-command': 'post-command',
  '--post-batch': 'post-batch',
  '--releases': 'releases',
  '--mode': 'mode',
  '--owner': 'owner',
  '--group': 'group',
  '--limit-rate': 'limit-rate',
  '--user': 'username',
}

/** Options the component sets through inputs of the same name; every other option goes in its `args` input. */
const COMPONENT_INPUTS = new Set(['--retry', '--port', '--remote-path', '--log-dir', '--runner-via', '--stall-timeout', '--post-command', '--post-batch', '--releases', '--mode', '--owner', '--group', '--limit-rate'])

const DEFAULT_KEYS = 'none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa'

const WORDS: Record<FrontEnd, FixWords> = {
  cli: {
    keyInput: '--identity',
    noKey: `no -i, no ssh-agent (SSH_AUTH_SOCK), no IdentityFile in the ssh config and ${DEFAULT_KEYS}`,
    giveKey: 'pass -i KEY_FILE, or start ssh-agent and ssh-add your key',
    passphrase: 'HERD_SSH_PASSPHRASE',
    acceptNew: '--accept-new-host-keys',
    addHostKey: (keyscan, file) => `run: ${keyscan} >> ${file}`,
    option: (flag) => flag,
  },
  action: {
    keyInput: 'ssh-key',
    noKey: `ssh-key is empty, and the runner has no ssh-agent, no IdentityFile in ~/.ssh/config and ${DEFAULT_KEYS}`,
    giveKey: 'give the private key from a secret (ssh-key: ${{ secrets.DEPLOY_KEY }})',
    passphrase: 'the ssh-key-passphrase input',
    acceptNew: 'ssh-strict: false',
    addHostKey: (keyscan) => `add the output of \`${keyscan}\` to the ssh-known-hosts input`,
    option: (flag) => (ACTION_INPUT_FOR_OPTION[flag] ? `the ${ACTION_INPUT_FOR_OPTION[flag]} input` : undefined),
  },
  gitlab: {
    keyInput: 'SSH_PRIVATE_KEY',
    noKey: `the key variable (the ssh-key input, default $SSH_PRIVATE_KEY) is empty or unset, and the job has no ssh-agent and ${DEFAULT_KEYS}`,
    giveKey: 'add the deploy key as the File variable SSH_PRIVATE_KEY (Settings > CI/CD > Variables), or name your variable in the ssh-key input',
    passphrase: 'the masked variable HERD_SSH_PASSPHRASE',
    acceptNew: 'the input ssh-strict: false',
    addHostKey: (keyscan) => `add the output of \`${keyscan}\` to the SSH_KNOWN_HOSTS variable (or the one the ssh-known-hosts input names)`,
    option: (flag) => (COMPONENT_INPUTS.has(flag) ? `the ${flag.slice(2)} input` : `${flag} in the args input`),
  },
}

/** The fix words of a front end (the command's when none is named). */
export function fixWords(frontEnd: FrontEnd = 'cli'): FixWords {
  return WORDS[frontEnd]
}

/** The front end the herd command serves: the GitLab component says so in HERD_FRONT_END; anything else is the command line. */
export function commandFrontEnd(env: NodeJS.ProcessEnv = process.env): FrontEnd {
  return env.HERD_FRONT_END === 'gitlab' ? 'gitlab' : 'cli'
}
