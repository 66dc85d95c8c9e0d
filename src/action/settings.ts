// The Action's inputs after parsing: one typed object the run works from (see inputs.ts).

/** When the per-host logs go up as a build artifact. */
export type UploadLogs = 'on-failure' | 'always' | 'never'

export interface ActionSettings {
  /** Local file to push, as given (relative paths are from the workspace). */
  file: string

  /** Absolute path of the file on every host. */
  destination: string

  /** Path of a herd.py hosts file, when the `hosts` input names an existing file. */
  hostsFile?: string

  /** Hosts one per line (`#` comments allowed), when `hosts` is multi-line text. */
  hostsText?: string

  /** Hosts separated by commas or spaces, when `hosts` is a single line that is not a file. */
  hostList?: string

  /** Extra attempts per host after a failure (-1: until success or the timeout), as typed. */
  retry: string

  /** Tracker port or range `LOW-HIGH` on the runner, as typed. */
  port: string

  /** The agent's working folder on each host (relative to the remote user's home), as typed. */
  remotePath: string

  /** Overall time limit in seconds, as typed; empty for none. */
  timeout: string

  /** SSH connections opened at once, as typed. */
  concurrency: string

  /** The `log-dir` input made absolute: one log file per host and report.json; absent for the run's own folder. */
  logDir?: string

  /** The `ssh-key` input as ssh reads a key file (LF line ends, one final newline); absent when none was given. */
  sshKey?: string

  /** Passphrase of the `ssh-key`; absent when the key is not encrypted. */
  sshKeyPassphrase?: string

  /** The `ssh-known-hosts` input (known_hosts lines); absent to use ~/.ssh's known_hosts. */
  knownHosts?: string

  /** strict: unknown or changed host keys fail; accept-new (ssh-strict false): unknown keys are trusted, changed keys still fail. */
  hostKeyPolicy: 'strict' | 'accept-new'

  /** The `encryption` input: false sends the file between peers in the clear (trusted networks only). */
  encrypt: boolean
  /** The `runner-via` input: how hosts reach the runner (auto, direct, ssh); empty for the default. */
  runnerVia: string
  /** The `stall-timeout` input: seconds a host may go without progress; empty for the default. */
  stallTimeout: string
  /** The `ssh-client` input: auto, builtin or openssh; empty for the default. */
  sshClient: string
  /** The `post-command` input: run on each host once its copy is in place; empty for none. */
  postCommand: string
  /** The `post-batch` input: at most this many hosts run the post-command at once; empty: each when done. */
  postBatch: string
  /** The `mode` input: the file's octal mode on every host; empty for the default. */
  mode: string
  /** The `owner` input: owner name or uid; empty for the default. */
  owner: string
  /** The `group` input: group name or gid; empty for the default. */
  group: string
  /** The `releases` input: with a folder, how many releases to keep; empty: the folder is swapped in. */
  releases: string
  /** The `limit-rate` input: bytes per second for each host's upload and download and the runner's upload (50M, 500K); empty: none. */
  limitRate: string

  /** Remote user for hosts that name none (else ~/.ssh/config's, else the runner's user). */
  username?: string

  /** When the per-host logs are uploaded as an artifact. */
  uploadLogs: UploadLogs

  /** Name of the logs artifact. */
  artifactName: string

  /** Days the artifact is kept; absent for the repository's default. */
  artifactRetentionDays?: number
}
