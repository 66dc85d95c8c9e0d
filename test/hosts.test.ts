// The inventory parser: herd.py hosts files and host lists, as a user writes them.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HostParseError, parseHost, parseHostList, parseHostsText } from '../src/core/hosts.js'
import { parsePorts } from '../src/core/plan.js'
import { parseUserHostPort } from '../src/core/ssh/config-parse.js'

test('every host form herd.py users write', () => {
  assert.deepEqual(parseHost('web-1'), { label: 'web-1', host: 'web-1', user: undefined, port: undefined })
  assert.deepEqual(parseHost('deploy@web-2'), { label: 'deploy@web-2', host: 'web-2', user: 'deploy', port: undefined })
  assert.deepEqual(parseHost('web-3:2222'), { label: 'web-3:2222', host: 'web-3', user: undefined, port: 2222 })
  assert.deepEqual(parseHost('deploy@10.0.0.4:22'), { label: 'deploy@10.0.0.4:22', host: '10.0.0.4', user: 'deploy', port: 22 })
  assert.deepEqual(parseHost('[2001:db8::5]:2200'), { label: '[2001:db8::5]:2200', host: '2001:db8::5', user: undefined, port: 2200 })
  assert.deepEqual(parseHost('root@[fe80::1%eth0]'), { label: 'root@[fe80::1%eth0]', host: 'fe80::1%eth0', user: 'root', port: undefined })
  assert.deepEqual(parseHost('2001:db8::6'), { label: '2001:db8::6', host: '2001:db8::6', user: undefined, port: undefined })
})

test('a hosts file: comments, blank lines and repeats are dropped, order is kept', () => {
  const text = '# fleet\n\nweb-2\nweb-1  # primary\n  web-2\ndeploy@web-2\nweb-2:22\r\n'
  assert.deepEqual(parseHostsText(text).map((h) => h.label), ['web-2', 'web-1', 'deploy@web-2', 'web-2:22'])
  assert.deepEqual(parseHostList('a, b,a c').map((h) => h.label), ['a', 'b', 'c'])
})

test('a malformed line is named with its line number and what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['web-1\nweb-2:99999\n', /^line 2: 'web-2:99999' has an invalid port '99999'; use a number from 1 to 65535$/],
    ['ok\n\nweb 3\n', /^line 3: 'web' |^line 3: 'web 3' contains white space/],
    ['@web\n', /^line 1: '@web' has an invalid user name/],
    ['[::1\n', /^line 1: '\[::1' has '\[' without '\]'/],
    ['web$(reboot)\n', /^line 1: 'web\$\(reboot\)' is not a valid host name; use letters, digits, dots and dashes, or an ssh config alias$/],
    ['web-1:\n', /^line 1: 'web-1:' has an invalid port ''/],
  ]
  for (const [text, expected] of cases) {
    assert.throws(() => parseHostsText(text), (err: unknown) => err instanceof HostParseError && expected.test(err.message), text)
  }
})

test('one rule for a port wherever herd reads one: a hosts line, a ProxyJump and --port agree', () => {
  for (const [text, ok] of [['1', true], ['22', true], ['65535', true], ['0', false], ['65536', false], ['022', true], ['2e3', false], ['-1', false], ['', false], ['99999', false], ['123456', false], ['000022', false]] as const) {
    const fromHosts = (() => { try { return parseHost(`web:${text}`).port } catch { return undefined } })()
    const fromJump = (() => { try { return parseUserHostPort(`web:${text}`).port } catch { return undefined } })()
    const fromPort = (() => { try { return parsePorts(text)[0] } catch { return undefined } })()
    assert.deepEqual([fromHosts, fromJump, fromPort], ok ? [Number(text), Number(text), Number(text)] : [undefined, undefined, undefined], `port '${text}'`)
  }
})

test('one reading of user@host:port: a hosts line and a ProxyJump hop split an address alike', () => {
  for (const text of ['web', 'deploy@web', 'web:2222', 'deploy@10.0.0.4:22', '[2001:db8::5]', '[2001:db8::5]:2200', 'root@[fe80::1%eth0]', '2001:db8::6', 'a.b@web-1:1']) {
    const { host, user, port } = parseHost(text)
    assert.deepEqual(parseUserHostPort(text), { host, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) }, text)
  }
})
