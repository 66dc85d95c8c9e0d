// One host's log: every step of every attempt, in memory and (with --log-dir) in its own file.
import fs from 'node:fs'
import path from 'node:path'

/** File-name-safe form of a host label. */
export function logFileName(label: string): string {
  return label.replace(/[^A-Za-z0-9_.@-]+/g, '_').replace(/^\.+/, '_') + '.log'
}

export class HostLog {
  readonly lines: string[] = []
  readonly file?: string
  private fd?: number

  constructor(readonly host: string, logDir?: string) {
    if (logDir) {
      fs.mkdirSync(logDir, { recursive: true })
      this.file = path.join(logDir, logFileName(host))
      this.fd = fs.openSync(this.file, 'w', 0o600)
    }
  }

  write(line: string): void {
    const stamped = `${new Date().toISOString()} ${line}`
    this.lines.push(stamped)
    if (this.fd !== undefined) fs.writeSync(this.fd, stamped + '\n')
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd)
    this.fd = undefined
  }
}
