// shellQuote/shellCommand: what a real POSIX sh makes of the quoted words is exactly the input.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { shellCommand, shellQuote } from '../src/core/ssh/index.js';

const NASTY = [
  '',
  'plain',
  'two words',
  "it's",
  "''",
  '"double"',
  '$(touch /tmp/herd-pwned)',
  '`id`',
  '$HOME ${HOME}',
  'a;b && c || d | e & f',
  'line1\nline2\n',
  '\ttab',
  'back\\slash\\',
  '*?[a-z]',
  '~root',
  'FOO=bar',
  '-n',
  '#comment',
  'ünïcødé ✓ 日本',
  "mixed 'single' and \"double\" and $(x) and `y`",
  '!bang',
  '{a,b}',
  '\r\n',
];

/** Run `sh -c` with each argument quoted into the script; the script prints its words NUL-separated. */
function throughShell(args: string[]): string[] {
  const script = `printf '%s\\0' ${args.map(shellQuote).join(' ')}`;
  const out = execFileSync('/bin/sh', ['-c', script]);
  const parts = out.toString('utf8').split('\0');
  parts.pop();
  return parts;
}

test('every nasty string survives a real sh unchanged', () => {
  assert.deepEqual(throughShell(NASTY), NASTY);
});

test('each string alone survives too (no reliance on neighbours)', () => {
  for (const s of NASTY) assert.deepEqual(throughShell([s]), [s], JSON.stringify(s));
});

test('safe words stay readable, others are single-quoted', () => {
  assert.equal(shellQuote('/srv/data/file.bin'), '/srv/data/file.bin');
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  assert.equal(shellQuote('FOO=bar'), "'FOO=bar'");
  assert.equal(shellQuote('~'), "'~'");
});

test('shellCommand builds a command whose argv is the input', () => {
  const argv = ['printf', '%s|', 'a b', "c'd", '$(e)', ''];
  const out = execFileSync('/bin/sh', ['-c', shellCommand(argv)]).toString('utf8');
  assert.equal(out, "a b|c'd|$(e)||");
  assert.throws(() => shellCommand([]));
  assert.throws(() => shellQuote('a\0b'));
});
