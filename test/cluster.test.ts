// Self-test of the real-host harness: namespaces, sshd per host, OpenSSH config, private /srv, shaping, teardown.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { canRunCluster, startCluster, type Cluster } from './support/cluster.js';

const can = canRunCluster();

test('cluster harness: 3 shaped sshd hosts reachable with OpenSSH, private /srv, clean teardown', { skip: can.ok ? false : can.why, timeout: 60_000 }, async (t) => {
  const started = Date.now();
  const cluster: Cluster = await startCluster({ hosts: 3, rateMbit: 100 });
  t.diagnostic(`cluster ${cluster.id} up in ${Date.now() - started} ms`);
  try {
    await t.test('known_hosts is hashed and the ssh config names every host', () => {
      const known = readFileSync(cluster.knownHostsPath, 'utf8').trim().split('\n');
      assert.equal(known.length, 3);
      for (const line of known) assert.match(line, /^\|1\|\S+ ssh-ed25519 AAAA/);
      assert.ok(!existsSync(`${cluster.knownHostsPath}.old`));
      const config = readFileSync(cluster.sshConfigPath, 'utf8');
      for (const h of cluster.hosts) assert.ok(config.includes(`Host ${h.alias}\n  HostName ${h.address}\n`));
      assert.equal(cluster.env().HOME, cluster.home);
      assert.equal(cluster.env().SSH_AUTH_SOCK, undefined);
    });

    await t.test('real OpenSSH from the runner namespace reaches every alias (BatchMode, strict host keys)', async () => {
      await Promise.all(
        cluster.hosts.map(async (h) => {
          const r = await cluster.runInRunner(cluster.sshArgv(h, 'echo $SSH_CONNECTION'), { timeoutMs: 10_000 });
          assert.equal(r.code, 0, `${h.alias}: ${r.stderr}`);
          // "<client ip> <port> <server ip> 22": proves the runner's address and the host's own address.
          assert.match(r.stdout, new RegExp(`^${cluster.runnerAddress} \\d+ ${h.address} 22\\s*$`));
        }),
      );
    });

    await t.test('a host key mismatch is refused', async () => {
      const [h0, h1] = cluster.hosts;
      const bad = `${cluster.home}/known_hosts.swapped`;
      writeFileSync(bad, `${h0!.address} ${h1!.hostKeyPub}\n`);
      const r = await cluster.runInRunner(cluster.sshArgv(h0!, 'true', ['-o', `UserKnownHostsFile=${bad}`]), { timeoutMs: 10_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    await t.test('each host has a private /srv', async () => {
      const [h0, h1] = cluster.hosts;
      const name = `/srv/cluster-selftest-${cluster.id}`;
      const w = await cluster.runInRunner(cluster.sshArgv(h0!, `echo hello > ${name}`), { timeoutMs: 10_000 });
      assert.equal(w.code, 0, w.stderr);
      assert.equal(readFileSync(cluster.hostPath(h0!, name), 'utf8'), 'hello\n');
      assert.equal(await cluster.sha256On(h0!, name), '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
      assert.equal(await cluster.sha256On(h1!, name), null);
      assert.ok(!existsSync(name), 'leaked into the root /srv');
      const seen = await cluster.shOn(h1!, `test -e ${name} && echo present || echo absent`);
      assert.equal(seen.stdout.trim(), 'absent');
      const own = await cluster.shOn(h0!, `cat ${name}; hostname -I`);
      assert.equal(own.code, 0, own.stderr);
      assert.equal(own.stdout.split('\n')[0], 'hello');
      assert.match(own.stdout, new RegExp(h0!.address.replaceAll('.', '\\.')));
    });

    await t.test('stopSshd makes ssh fail, startSshd brings it back', async () => {
      const h = cluster.hosts[2]!;
      const oldPid = h.sshdPid;
      await cluster.stopSshd(h);
      assert.equal(h.sshdPid, 0);
      const down = await cluster.runInRunner(cluster.sshArgv(h, 'true', ['-o', 'ConnectTimeout=3']), { timeoutMs: 10_000 });
      assert.notEqual(down.code, 0);
      assert.match(down.stderr, /Connection refused/);
      await cluster.startSshd(h);
      assert.ok(h.sshdPid > 0 && h.sshdPid !== oldPid);
      const up = await cluster.runInRunner(cluster.sshArgv(h, 'true'), { timeoutMs: 10_000 });
      assert.equal(up.code, 0, up.stderr);
    });

    await t.test('no stray processes once sessions end', async () => {
      for (const h of cluster.hosts) assert.deepEqual(await cluster.waitForNoStrayProcesses(h, 3000), [], h.alias);
      // and a left-behind process is reported
      const h = cluster.hosts[1]!;
      const bg = await cluster.runInRunner(cluster.sshArgv(h, 'nohup sleep 30 >/dev/null 2>&1 </dev/null &'), { timeoutMs: 10_000 });
      assert.equal(bg.code, 0, bg.stderr);
      // The shell may not have exec'd sleep yet when ssh returns: look again for up to 3 s.
      let strays = await cluster.strayProcesses(h);
      for (let i = 0; i < 30 && !strays.some((p) => p.cmdline === 'sleep 30'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        strays = await cluster.strayProcesses(h);
      }
      assert.ok(strays.some((p) => p.cmdline === 'sleep 30'), JSON.stringify(strays));
      await cluster.stopSshd(h, { killSessions: true });
      assert.deepEqual(await cluster.strayProcesses(h), []);
      await cluster.startSshd(h);
    });

    await t.test('setLink down makes the host unreachable, up restores it', async () => {
      const h = cluster.hosts[0]!;
      await cluster.setLink(h, false);
      const down = await cluster.runInRunner(cluster.sshArgv(h, 'true', ['-o', 'ConnectTimeout=1']), { timeoutMs: 10_000 });
      assert.notEqual(down.code, 0);
      await cluster.setLink(h, true);
      const up = await cluster.runInRunner(cluster.sshArgv(h, 'true'), { timeoutMs: 10_000 });
      assert.equal(up.code, 0, up.stderr);
    });

    await t.test('links are shaped to about 100 Mbit/s', async () => {
      const bytes = 8 * 1024 * 1024; // 0.67 s of payload at 100 Mbit/s
      const t0 = Date.now();
      const r = await cluster.runInRunner(cluster.sshArgv(cluster.hosts[0]!, 'cat > /dev/null'), { input: Buffer.alloc(bytes, 7), timeoutMs: 15_000 });
      const secs = (Date.now() - t0) / 1000;
      assert.equal(r.code, 0, r.stderr);
      const mbit = (bytes * 8) / secs / 1e6;
      t.diagnostic(`8 MiB over ssh in ${secs.toFixed(2)} s = ${mbit.toFixed(0)} Mbit/s`);
      assert.ok(secs >= 0.5, `too fast for 100 Mbit/s: ${secs} s`);
      assert.ok(mbit >= 40, `far below 100 Mbit/s: ${mbit.toFixed(0)} Mbit/s`);
    });
  } finally {
    await cluster.destroy();
  }

  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!netns.includes(cluster.id), `namespaces left: ${netns}`);
  assert.ok(!existsSync(cluster.dir), `dir left: ${cluster.dir}`);
  await cluster.destroy(); // idempotent
  t.diagnostic(`total ${Date.now() - started} ms`);
});

test('cluster harness: 8 hosts start quickly and two clusters coexist', { skip: can.ok ? false : can.why, timeout: 60_000 }, async (t) => {
  const t0 = Date.now();
  const [a, b] = await Promise.all([startCluster({ hosts: 8 }), startCluster({ hosts: 1, knownHosts: 'plain' })]);
  const upMs = Date.now() - t0;
  t.diagnostic(`8-host + 1-host clusters up in ${upMs} ms`);
  try {
    assert.notEqual(a.id, b.id);
    assert.ok(upMs < 5000, `startup took ${upMs} ms`);
    assert.match(readFileSync(b.knownHostsPath, 'utf8'), new RegExp(`^${b.hosts[0]!.address.replaceAll('.', '\\.')} ssh-ed25519 `));
    const results = await Promise.all([...a.hosts.map((h) => a.runInRunner(a.sshArgv(h, 'true'), { timeoutMs: 10_000 })), b.runInRunner(b.sshArgv(b.hosts[0]!, 'true'), { timeoutMs: 10_000 })]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
  } finally {
    await Promise.all([a.destroy(), b.destroy()]);
  }
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!netns.includes(a.id) && !netns.includes(b.id), `namespaces left: ${netns}`);
});

test('cluster harness: 40 hosts that all reach each other: the kernel neighbour table is raised while the cluster lives, then restored', { skip: can.ok ? false : can.why, timeout: 120_000 }, async () => {
  const limit = '/proc/sys/net/ipv4/neigh/default/gc_thresh3';
  const before = readFileSync(limit, 'utf8').trim();
  const cluster = await startCluster({ hosts: 40 });
  try {
    // 41 namespaces that all talk need about 41² entries in the one table all namespaces share (1024 by default).
    assert.ok(Number(readFileSync(limit, 'utf8')) >= 2 * 42 ** 2, `gc_thresh3 ${readFileSync(limit, 'utf8').trim()}`);
    const peers = cluster.hosts.map((h) => h.address).join(' ');
    const script = `n=0; for a in ${peers}; do timeout 5 bash -c "exec 3<>/dev/tcp/$a/22" 2>/dev/null || n=$((n+1)); done; echo "unreached $n"`;
    const results = await Promise.all(cluster.hosts.map((h) => cluster.shOn(h, script, 90_000)));
    for (const [i, r] of results.entries()) assert.match(r.stdout, /unreached 0$/m, `${cluster.hosts[i]!.alias}: ${r.stdout}${r.stderr}`);
  } finally {
    await cluster.destroy();
  }
  assert.equal(readFileSync(limit, 'utf8').trim(), before, 'the machine\'s limit is back');
});
