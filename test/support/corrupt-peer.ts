// A test-only stand-in for herd's agent that serves corrupt pieces: it reads the runner's start message,
// joins the run's swarm (same torrent, tracker and secret) claiming every piece, and serves random bytes.
// It runs on a host in place of the agent (through a --node wrapper) until /root/corrupt-peer.stop appears.
import fs from 'node:fs'
import crypto from 'node:crypto'
import WebTorrent from 'webtorrent'
import { FileStore } from '../../src/core/swarm/file-store.js'
import { privateClientOptions } from '../../src/core/swarm/client-options.js'
import { PROTOCOL_VERSION, encodeLine, lineReader, type AgentEvent, type StartMessage } from '../../src/core/protocol.js'

const send = (e: AgentEvent) => process.stdout.write(encodeLine(e))
const STOP_FILE = '/root/corrupt-peer.stop'
const JUNK_FILE = '/root/corrupt-peer.bin'

function writeJunk(size: number): void {
  const fd = fs.openSync(JUNK_FILE, 'w')
  for (let done = 0; done < size; done += 1 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(1 << 20, size - done)))
  fs.closeSync(fd)
}

function quit(client: WebTorrent | undefined, message: string): void {
  send({ t: 'error', code: 'io', message })
  const leave = () => process.stdout.write('', () => process.exit(1))
  if (client) client.destroy(leave)
  else leave()
}

let client: WebTorrent | undefined
let started = false
process.stdin.on('end', () => quit(client, 'corrupt peer: stdin closed'))
process.stdin.on(
  'data',
  lineReader(
    (msg) => {
      const m = msg as { t: string }
      if (m.t === 'abort' || m.t === 'release') return quit(client, `corrupt peer: ${m.t}`)
      if (m.t !== 'start' || started) return
      started = true
      const start = m as unknown as StartMessage
      writeJunk(start.size)
      client = new WebTorrent(privateClientOptions({ torrentPort: 0 }))
      client.on('error', () => {})
      const torrent = client.add(Buffer.from(start.torrent, 'base64'), {
        skipVerify: true,
        store: class { constructor(chunkLength: number) { return new FileStore(chunkLength, { path: JUNK_FILE, length: start.size }) } },
      })
      torrent.on('error', () => {})
      torrent.once('ready', () => {
        send({ t: 'ready', protocol: PROTOCOL_VERSION, node: process.version, pid: process.pid, have: start.size })
        send({ t: 'log', message: 'corrupt peer: serving random bytes for every piece' })
      })
      const poll = setInterval(() => {
        if (fs.existsSync(STOP_FILE)) {
          clearInterval(poll)
          quit(client, `corrupt peer: stopped after uploading ${torrent.uploaded} bytes`)
        }
      }, 200)
    },
    () => {},
  ),
)
