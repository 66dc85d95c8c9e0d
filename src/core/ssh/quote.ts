// POSIX sh quoting: every remote command is built from an argv with these, never by string pasting.

// Characters that need no quoting anywhere in a word. `=` is left out so a first word is never an
// assignment, `~` so it is never tilde-expanded.
const SAFE = /^[A-Za-z0-9_@%+:,./-]+$/;

/** Quote one argument for POSIX sh: safe words as-is, else single quotes with `'\''` for `'`. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('cannot pass a NUL byte in a shell argument');
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

/** A command line for `sh -c` (what sshd runs) from an argv: each word quoted, joined by spaces. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(shellQuote).join(' ');
}
