// A test-only stand-in for herd's agent that serves corrupt pieces: it reads the runner's start message,
// joins the run's swarm (same torrent, tracker and secret) claiming every piece, and serves random bytes.
// It runs on a host in place of the agent (through a --node wrapper) until /root/corrupt-peer.stop appears.
import fs from 'node:fs'
import crypto from 'node:crypto'
import { MAX_LINE_BYTES, PROTOCOL_VERSION, encodeLine, lineReader, type AgentEvent, type StartMessage } from '../../src/core/protocol.js'
import { Announcer } from '../../src/engine/announce.js'
import { Bitfield } from '../../src/engine/bitfield.js'
import { readTorrent } from '../../src/engine/metainfo.js'
import { Store } from '../../src/engine/store.js'
import { Swarm } from '../../src/engine/swarm.js'

const send = (e: AgentEvent) => process.stdout.write(encodeLine(e))
const STOP_FILE = '/root/corrupt-peer.stop'
const JUNK_FILE = '/root/corrupt-peer.bin'

function writeJunk(size: number): void {
  const fd = fs.openSync(JUNK_FILE, 'w')
  for (let done = 0; done < size; done += 1 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(1 << 20, size - done)))
  fs.closeSync(fd)
}

let swarm: Swarm | undefined
function quit(message: string): void {
  send({ t: 'error', code: 'io', message })
  void (swarm?.close() ?? Promise.resolve()).finally(() => process.stdout.write('', () => process.exit(1)))
}

let started = false
process.stdin.on('end', () => quit('corrupt peer: stdin closed'))
process.stdin.on(
  'data',
  lineReader(
    (msg) => {
      const m = msg as { t: string }
      if (m.t === 'abort' || m.t === 'release') return quit(`corrupt peer: ${m.t}`)
      if (m.t !== 'start' || started) return
      started = true
      const start = m as unknown as StartMessage
      writeJunk(start.size)
      const meta = readTorrent(Buffer.from(start.torrent, 'base64'))
      const peerId = crypto.randomBytes(20)
      const s = (swarm = new Swarm({
        meta,
        seal: { secret: Buffer.from(start.secret, 'base64'), encrypt: start.encrypt },
        peerId,
        store: new Store({ path: JUNK_FILE, length: start.size }),
        have: Bitfield.full(Math.ceil(start.size / meta.pieceLength)),
      }))
      void s.listen([0]).then((port) => {
        new Announcer({ url: meta.announce ?? '', infoHash: meta.infoHash, peerId, port, left: () => 0, onPeers: () => {}, onError: () => {} }).start()
        send({ t: 'ready', protocol: PROTOCOL_VERSION, node: process.version, pid: process.pid, have: start.size })
        send({ t: 'log', message: 'corrupt peer: serving random bytes for every piece' })
      })
      const poll = setInterval(() => {
        if (fs.existsSync(STOP_FILE)) {
          clearInterval(poll)
          quit(`corrupt peer: stopped after uploading ${s.uploaded} bytes`)
        }
      }, 200)
    },
    () => {},
    { maxBytes: MAX_LINE_BYTES.toAgent, onTooLong: () => quit('corrupt peer: a line too long') },
  ),
)
