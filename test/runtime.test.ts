// Hosts without a usable node: herd brings a Node runtime, checks it by hash there, and reuses it next time.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { clusterForFile, type TestFile } from './support/fixture.js'
import type { Cluster } from './support/cluster.js'
import { herd, hostsFile } from './support/herd.js'

const MiB = 1024 * 1024
let cluster: Cluster
let work: string
let file: TestFile

const skip = clusterForFile({ hosts: 8, prefix: 'herd-runtime-', file: { name: 'index.bin', bytes: 16 * MiB } }, (fx) => ({ cluster, work, file } = fx))

test('8 hosts on which node is missing or too old get the file in one run; the second run uploads no runtime', { skip, timeout: 240_000 }, async () => {
  // What `--node` names on every host: missing on hosts with an even address, Node 16 on the others.
  const shim = path.join(cluster.dir, 'node-shim')
  fs.writeFileSync(
    shim,
    [
      '#!/bin/sh',
      'last=$(echo "$SSH_CONNECTION" | cut -d " " -f 3); last=${last##*[.:]}',
      'if [ $((last % 2)) -eq 0 ]; then echo "sh: node: not found" >&2; exit 127; fi',
      `printf '\\nHERD-NODE v16.20.2\\n'`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  )
  const hosts = hostsFile(work, cluster.hosts)
  const first = await herd(cluster, [file.path, '/srv/first.bin', hosts, '--node', shim], { timeoutMs: 180_000 })
  assert.equal(first.code, 0, first.stderr)
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, '/srv/first.bin'), file.sha256, h.alias)
  for (const h of first.report!.hosts) assert.ok((h.runtimeBytes ?? 0) > 1024 * 1024, `${h.host}: runtime bytes ${h.runtimeBytes}`)
  assert.equal(first.report!.runtimeBytes, first.report!.hosts.reduce((s, h) => s + (h.runtimeBytes ?? 0), 0))
  assert.match(first.stderr, /Node runtime uploaded to 8 hosts without a usable node: .* from the runner/)

  const second = await herd(cluster, [file.path, '/srv/second.bin', hosts, '--node', shim], { timeoutMs: 120_000 })
  assert.equal(second.code, 0, second.stderr)
  for (const h of cluster.hosts) assert.equal(await cluster.sha256On(h, '/srv/second.bin'), file.sha256, h.alias)
  assert.equal(second.report!.runtimeBytes, 0)
  for (const h of second.report!.hosts) assert.equal(h.runtimeBytes, undefined, `${h.host} got the runtime again`)
  for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 10_000), [], `${h.alias}: processes left running`)
})
