// Bad input through the committed CLI: each mistake is one line naming the input and the fix, exit 2, and no host is touched.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import type { Cluster } from './support/cluster.js'
import { cliPath, herd, hostsFile, repoRoot, sshConnections, sshConnectionsUpToNow } from './support/herd.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

// The folder is readable by an unprivileged user too (the unreadable-file cases run herd as nobody).
const skip = clusterForFile({ hosts: 2, prefix: 'herd-input-', workMode: 0o755, file: { name: 'app.bin', bytes: 1 * MiB } }, (fx) => ({ cluster, work, file } = fx))

/**
 * Runs herd with args; asserts exit 2, a `herd: INPUT: ...` line on stderr that matches `message`, and
 * that no host saw an SSH connection or got herd's working folder.
 */
async function refused(args: string[], input: string, message: RegExp, opts: { env?: Record<string, string>; asNobody?: boolean; noFix?: boolean } = {}): Promise<string> {
  const before = await sshConnectionsUpToNow(cluster, cluster.hosts)
  const r = opts.asNobody
    ? await cluster.runInRunner(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'node', cliPath, ...args, '--json'], { env: cluster.env(opts.env), timeoutMs: 30_000, cwd: repoRoot })
    : await herd(cluster, args, { timeoutMs: 30_000, env: opts.env })
  assert.equal(r.code, 2, `exit code for ${input}: ${r.stderr}`)
  assert.equal(r.stdout, '', 'no report on stdout')
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('herd: '))
  assert.equal(errors.length, 1, `one error line, got: ${r.stderr}`)
  const line = errors[0]!
  assert.ok(line.startsWith(`herd: ${input}: `), `the error names ${input}: ${line}`)
  assert.match(line, message)
  if (!opts.noFix) assert.match(line, /; /, `the error says the fix after '; ': ${line}`)
  // No host touched: between two marker connections sshd logged none of herd's, and no working folder appeared.
  assert.deepEqual(await sshConnectionsUpToNow(cluster, cluster.hosts), before.map((n) => n + 1), 'an SSH connection was made')
  for (const h of cluster.hosts) assert.equal(fs.existsSync(cluster.hostPath(h, '/root/.cache/herd-action')), false, `${h.alias} was touched`)
  return line
}

const hostlist = () => ['--hostlist', cluster.hosts.map((h) => h.alias).join(',')]

test('the local file: missing, empty, a folder holding a pipe, not a regular file', { skip, timeout: 60_000 }, async () => {
  await refused([path.join(work, 'nope.bin'), '/srv/x.bin', ...hostlist()], 'local file', /nope\.bin does not exist; check the path/)
  const empty = path.join(work, 'empty.bin')
  fs.writeFileSync(empty, '')
  await refused([empty, '/srv/x.bin', ...hostlist()], 'local file', /empty\.bin is empty; give a file with content/)
  const fifo = path.join(work, 'fifo')
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0)
  await refused([fifo, '/srv/x.bin', ...hostlist()], 'local file', /fifo is not a regular file; give a file/)
  // A folder is pushed whole, but not with a pipe in it.
  const folder = path.join(work, 'with-pipe')
  fs.mkdirSync(path.join(folder, 'sub'), { recursive: true })
  assert.equal(spawnSync('mkfifo', [path.join(folder, 'sub', 'pipe')]).status, 0)
  await refused([folder, '/srv/app', ...hostlist()], 'local file', /with-pipe\/sub\/pipe is a socket, pipe or device; herd carries files, folders and symbolic links: remove it/)
})

test('an unreadable local file, hosts file or identity (herd run as an unprivileged user; root reads anything)', { skip, timeout: 60_000 }, async () => {
  const secret = path.join(work, 'secret.bin')
  fs.writeFileSync(secret, 'x')
  fs.chmodSync(secret, 0o000)
  await refused([secret, '/srv/x.bin', ...hostlist()], 'local file', /secret\.bin cannot be read \(EACCES\); check its permissions/, { asNobody: true })
  const hosts = hostsFile(work, cluster.hosts, 'hosts-0000.txt')
  fs.chmodSync(hosts, 0o000)
  await refused([file.path, '/srv/x.bin', hosts], 'hosts file', /hosts-0000\.txt cannot be read \(EACCES\); check its permissions/, { asNobody: true })
  fs.chmodSync(file.path, 0o644)
  const key = path.join(work, 'id_unreadable')
  fs.copyFileSync(cluster.identityPath, key)
  fs.chmodSync(key, 0o000)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', key], '--identity', /identity .*id_unreadable cannot be read \(EACCES\); check its permissions/, { asNobody: true })
})

test('hosts: an empty hosts file, no hosts at all, a malformed line named by its number, two sources at once', { skip, timeout: 60_000 }, async () => {
  const empty = path.join(work, 'empty-hosts.txt')
  fs.writeFileSync(empty, '# nothing here yet\n\n')
  await refused([file.path, '/srv/x.bin', empty], 'hosts file', /empty-hosts\.txt names no host; write one host per line/)
  // No hosts file, no --hostlist, and an empty standard input.
  await refused([file.path, '/srv/x.bin'], 'hosts', /no host given; pass a hosts file/)
  const bad = path.join(work, 'bad-hosts.txt')
  fs.writeFileSync(bad, `# fleet\n${cluster.hosts[0]!.alias}\nweb-2:99999\n`)
  await refused([file.path, '/srv/x.bin', bad], bad, /line 3: 'web-2:99999' has an invalid port '99999'; use a number from 1 to 65535/)
  fs.writeFileSync(bad, `${cluster.hosts[0]!.alias}\n\nweb 2\n`)
  await refused([file.path, '/srv/x.bin', bad], bad, /line 3: 'web 2' contains white space; write one host per line/)
  await refused([file.path, '/srv/x.bin', '--hostlist', 'ok-host,bad$host'], 'hosts', /'bad\$host' is not a valid host name/)
  await refused([file.path, '/srv/x.bin', hostsFile(work, cluster.hosts), ...hostlist()], 'hosts', /given twice \(a hosts file and --hostlist\); give the hosts one way only/)
  await refused([file.path, '/srv/x.bin', path.join(work, 'hosts-missing.txt')], 'hosts file', /hosts-missing\.txt does not exist; check the path/)
})

test('ports: not a port, a reversed range, a busy port', { skip, timeout: 60_000 }, async () => {
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--port', '70000'], '--port', /'70000' is not a port \(1-65535\) or a range LOW-HIGH/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--port', 'http'], '--port', /'http' is not a port/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--port', '9010-9000'], '--port', /'9010-9000' is a range with LOW > HIGH; write the lower port first: 9000-9010/)
  // Something else listens on the port in the runner's network namespace.
  const holder = cluster.spawnInRunner(['node', '-e', "require('net').createServer().listen(18998, () => console.log('listening'))"])
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve())
      holder.once('exit', () => reject(new Error('the port holder exited')))
    })
    await refused([file.path, '/srv/x.bin', ...hostlist(), '--port', '18998'], '--port', /port 18998 busy; pick a free port or a wider range/)
  } finally {
    process.kill(-holder.pid!, 'SIGKILL')
  }
})

test('the destination: relative, a folder; deploy options that do not fit what is pushed', { skip, timeout: 60_000 }, async () => {
  await refused([file.path, 'srv/x.bin', ...hostlist()], 'remote file', /'srv\/x\.bin' is not an absolute path; write it from \//)
  await refused([file.path, '/srv/', ...hostlist()], 'remote file', /names a folder; give the full path of the file, e.g\. \/srv\/app\.bin/)
  const folder = path.join(work, 'site')
  fs.mkdirSync(folder, { recursive: true })
  await refused([folder, '/', ...hostlist()], 'remote file', /'\/' is not a folder herd can replace; give the folder's own path, e\.g\. \/srv\/site/)
  await refused([file.path, '/srv/x.bin', '--releases', '3', ...hostlist()], '--releases', /keeps releases of a folder, and .*app\.bin is a file; push a folder or leave --releases out/)
  await refused([folder, '/srv/site', '--releases', '0', ...hostlist()], '--releases', /'0' is not a whole number from 1 to 1000; give one/)
  await refused([folder, '/srv/site', '--mode', '0640', ...hostlist()], '--mode', /sets a file's mode, and a folder's entries keep their own; leave --mode out/)
  await refused([file.path, '/srv/x.bin', '--mode', 'rw-r--r--', ...hostlist()], '--mode', /'rw-r--r--' is not an octal mode; give one like 0644/)
  await refused([file.path, '/srv/x.bin', '--owner', 'a b', ...hostlist()], '--owner', /'a b' is not a user name or uid; give one like www-data or 33/)
})

test('identities: missing, a directory, not a key, encrypted without or with a wrong passphrase', { skip, timeout: 60_000 }, async () => {
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', path.join(work, 'no_such_key')], '--identity', /identity .*no_such_key does not exist; check the path/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', work], '--identity', /is a directory; give a file/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', file.path], '--identity', /is not a private key this client can read .*; use an OpenSSH or PEM private key/)
  const encrypted = path.join(work, 'id_encrypted')
  fs.copyFileSync(cluster.identityPath, encrypted)
  fs.chmodSync(encrypted, 0o600)
  assert.equal(spawnSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'the-right-one', '-f', encrypted]).status, 0)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', encrypted], '--identity', /is encrypted; give its passphrase \(HERD_SSH_PASSPHRASE\)/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '-i', encrypted], '--identity', /the passphrase does not decrypt it; check HERD_SSH_PASSPHRASE/, { env: { HERD_SSH_PASSPHRASE: 'a-wrong-one' } })
})

test('other options: known_hosts and ssh config files that do not exist, numbers that are not numbers', { skip, timeout: 60_000 }, async () => {
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--known-hosts', path.join(work, 'kh')], '--known-hosts', /known_hosts file .*kh does not exist/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--ssh-config', path.join(work, 'cfg')], '--ssh-config', /ssh config .*cfg does not exist/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--retry', 'twice'], '--retry', /'twice' is not a whole number from -1 up; give one/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--timeout', '0'], '--timeout', /'0' is not a whole number from 1 up/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--concurrency', '0'], '--concurrency', /'0' is not a whole number from 1 to 1000/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--remote-path', 'a\nb'], '--remote-path', /contains a NUL or newline; give a folder path without them/)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--limit-rate', '5X'], '--limit-rate', /'5X' is not a rate; give bytes per second as a whole number with an optional K, M or G/)
})

test('--log-dir where herd cannot write: exit 2 naming --log-dir, nothing written', { skip, timeout: 60_000 }, async () => {
  // The work folder is root's and 0755: an unprivileged user can neither write in it nor make a folder there.
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--log-dir', path.join(work, 'logs-nobody')], '--log-dir', /logs-nobody cannot be created: .* is not writable \(EACCES\); give a folder you can write to/, { asNobody: true })
  const mine = fs.mkdtempSync(path.join(work, 'logs-root-'))
  fs.chmodSync(mine, 0o755)
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--log-dir', mine], '--log-dir', /logs-root-\w+ is not writable \(EACCES\)/, { asNobody: true })
  assert.deepEqual(fs.readdirSync(mine), [], 'nothing written in the log dir')
  await refused([file.path, '/srv/x.bin', ...hostlist(), '--log-dir', path.join(file.path, 'logs')], '--log-dir', /app\.bin is not a folder/)
})

test('the same inputs, corrected, do reach the hosts (the checks above are not vacuous)', { skip, timeout: 60_000 }, async () => {
  const before = await sshConnectionsUpToNow(cluster, cluster.hosts)
  const r = await herd(cluster, [file.path, '/srv/x.bin', ...hostlist()])
  assert.equal(r.code, 0, r.stderr)
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, '/srv/x.bin'), file.sha256)
  cluster.hosts.forEach((h, i) => assert.ok(sshConnections(h) > before[i]!, `${h.alias}: sshd logged the connection`))
})
