declare module 'bittorrent-tracker' {
  import { EventEmitter } from 'node:events'
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export class Server extends EventEmitter {
    constructor(opts: Record<string, unknown>)
    onHttpRequest(req: IncomingMessage, res: ServerResponse, opts?: { action?: string; trustProxy?: boolean }): void
    close(cb?: () => void): void
    torrents: Record<string, unknown>
  }
}
