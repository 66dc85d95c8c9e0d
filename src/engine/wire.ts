// One connection between two peers of a run: the sealed handshake, then five messages in sealed records.
import { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { BlockPool } from './block-pool.js'
import type { RateLimit } from './rate.js'
import { BLOCK } from './store.js'
import {
  HELLO_BYTES,
  PROOF_BYTES,
  makeHello,
  proofHolds,
  proofOf,
  readHello,
  sessionKeys,
  type Hello,
  type Opener,
  type Role,
  type RunSeal,
  type Sealer,
} from './seal.js'

const enum Type {
  Bitfield = 1,
  Have = 2,
  Request = 3,
  Block = 4,
  Cancel = 5,
}

/** A handshake that has not finished by then is dropped (a port scanner, a stock BitTorrent peer). */
const HANDSHAKE_MS = 10_000
/** A block record's head: type, piece index, offset in the piece. */
const BLOCK_HEAD = 9
const EMPTY = Buffer.alloc(0)
/** The largest block record: what a pool's buffer for received blocks holds. */
export const BLOCK_RECORD = BLOCK_HEAD + BLOCK

export interface WireEvents {
  ready: []
  bitfield: [bits: Uint8Array]
  have: [index: number]
  request: [index: number, offset: number, length: number]
  cancel: [index: number, offset: number, length: number]
  /**
   * A block's bytes as they were decrypted, in order: written and hashed as they are, never joined. With
   * a pool (WireOptions) they are a view of one of its buffers: the listener gives it back to `wire.pool`.
   */
  block: [index: number, offset: number, parts: Buffer[]]
  /** The socket's send queue emptied: more blocks may go. */
  drain: []
  close: [reason: string]
}

/** The first `n` bytes of `parts` as one buffer, and views of the rest. */
function splitHead(parts: Buffer[], n: number): { head: Buffer; rest: Buffer[] } {
  if (parts[0] && parts[0].length >= n) {
    return { head: parts[0].subarray(0, n), rest: [parts[0].subarray(n), ...parts.slice(1)].filter((p) => p.length > 0) }
  }
  const all = Buffer.concat(parts)
  return { head: all.subarray(0, n), rest: all.length > n ? [all.subarray(n)] : [] }
}

/** Reads through a download limit: past it the socket is not read (TCP holds the sender back) until tokens return. */
function metered(socket: net.Socket, limit: RateLimit, onData: (chunk: Buffer) => void): (chunk: Buffer) => void {
  const resume = () => socket.resume()
  return (chunk) => {
    onData(chunk)
    if (limit.spend(chunk.length)) return
    socket.pause()
    limit.whenOpen(resume)
  }
}

export interface WireOptions {
  /** The address we dial, known before (or without) a connection. */
  dialled?: { host: string; port: number }
  /** This side's download limit, shared by all its wires; absent: read as fast as bytes come. */
  download?: RateLimit
  /** Buffers received blocks arrive in (see Opener); absent: in the decipher's own buffers. */
  pool?: BlockPool
}

export class Wire extends EventEmitter<WireEvents> {
  /** The other side's peer id (hex), known once `ready`. */
  peerId = ''
  private address = ''
  private port = 0
  closed = false
  /** Both ends proved the secret: messages flow. */
  ready = false
  private sealer: Sealer | undefined
  private opener: Opener | undefined
  private pending: Buffer[] = []
  private pendingBytes = 0
  private readonly timer: NodeJS.Timeout
  readonly pool: BlockPool | undefined

  /**
   * `role` is dialer when we opened the connection. The dialer speaks first; the listener answers with
   * its hello and proof; the dialer's proof closes the handshake. Nothing else is read or sent before.
   */
  constructor(readonly socket: net.Socket, readonly role: Role, seal: RunSeal, peerId: Buffer, opts: WireOptions = {}) {
    super()
    const { dialled } = opts
    this.pool = opts.pool
    if (dialled) {
      this.address = dialled.host
      this.port = dialled.port
    }
    // A dialling socket knows its peer's address once connected; it is kept for the logs after the close.
    if (role === 'dialer') socket.once('connect', () => this.remoteAddress)
    socket.setNoDelay(true)
    const ours = makeHello(peerId)
    let theirs: Hello | undefined
    if (role === 'dialer') socket.write(ours.bytes)
    this.timer = setTimeout(() => this.destroy('handshake timed out'), HANDSHAKE_MS)
    this.timer.unref()
    const onData = (chunk: Buffer) => {
      if (this.opener) return this.receive(chunk)
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
      // The dialer waits for the listener's hello and proof; the listener for the hello, then the proof.
      const need = role === 'dialer' ? HELLO_BYTES + PROOF_BYTES : theirs ? PROOF_BYTES : HELLO_BYTES
      if (this.pendingBytes < need) return
      const bytes = Buffer.concat(this.pending)
      this.pending = []
      this.pendingBytes = 0
      if (!theirs) {
        theirs = readHello(bytes)
        if (!theirs) return this.destroy('not a peer of this run (unknown handshake)')
        this.peerId = theirs.peerId.toString('hex')
        if (role === 'listener') {
          socket.write(Buffer.concat([ours.bytes, proofOf(seal, 'listener', theirs, ours)]))
          const rest = bytes.subarray(HELLO_BYTES)
          if (rest.length) onData(rest)
          return
        }
      }
      const proofAt = role === 'dialer' ? HELLO_BYTES : 0
      const proof = bytes.subarray(proofAt, proofAt + PROOF_BYTES)
      const dialer = role === 'dialer' ? ours : theirs
      const listener = role === 'dialer' ? theirs : ours
      if (!proofHolds(seal, role === 'dialer' ? 'listener' : 'dialer', dialer, listener, proof)) {
        return this.destroy('not a peer of this run (wrong secret)')
      }
      if (role === 'dialer') socket.write(proofOf(seal, 'dialer', dialer, listener))
      const keys = sessionKeys(seal, role, dialer, listener, this.pool)
      this.sealer = keys.sealer
      this.opener = keys.opener
      clearTimeout(this.timer)
      this.ready = true
      this.emit('ready')
      const rest = bytes.subarray(proofAt + PROOF_BYTES)
      if (rest.length) this.receive(rest)
    }
    // Unlimited, the socket's bytes go straight to the records: no cost per read.
    socket.on('data', opts.download ? metered(socket, opts.download, onData) : onData)
    socket.on('error', (err) => this.destroy(err.message))
    socket.on('close', () => this.destroy('connection closed'))
    socket.on('drain', () => this.emit('drain'))
  }

  /** The peer's address in one form, whether it dialled us (`::ffff:10.0.0.5`) or we it (`10.0.0.5`). */
  get remoteAddress(): string {
    if (!this.address && this.socket.remoteAddress) {
      this.address = this.socket.remoteAddress.replace(/^::ffff:(?=\d+\.)/, '')
      this.port = this.socket.remotePort ?? 0
    }
    return this.address
  }

  get remotePort(): number {
    return this.remoteAddress ? this.port : 0
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return
    try {
      this.opener!.push(chunk, (parts) => this.dispatch(parts))
    } catch (err) {
      this.destroy(`bad record: ${(err as Error).message}`)
    }
    // Closed by a listener while the rest of the read went on: a record begun after that goes back too.
    if (this.closed) this.opener!.dispose()
  }

  private dispatch(parts: Buffer[]): void {
    if (this.closed) return this.giveBack(parts)
    const type = parts[0]?.[0]
    if (type === Type.Block) {
      const { head, rest } = splitHead(parts, BLOCK_HEAD)
      if (!this.emit('block', head.readUInt32BE(1), head.readUInt32BE(5), rest)) this.giveBack(parts)
      return
    }
    let msg = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    if (this.pool?.owns(msg)) {
      // Another message as large as a block (a bitfield of a big file): its own copy, the pool's buffer back.
      const own = Buffer.from(msg)
      this.pool.give(msg)
      msg = own
    }
    switch (type) {
      case Type.Bitfield:
        return void this.emit('bitfield', msg.subarray(1))
      case Type.Have:
        return void this.emit('have', msg.readUInt32BE(1))
      case Type.Request:
        return void this.emit('request', msg.readUInt32BE(1), msg.readUInt32BE(5), msg.readUInt32BE(9))
      case Type.Cancel:
        return void this.emit('cancel', msg.readUInt32BE(1), msg.readUInt32BE(5), msg.readUInt32BE(9))
      default:
        this.destroy(`unknown message type ${type}`)
    }
  }

  private giveBack(parts: Buffer[]): void {
    for (const p of parts) this.pool?.give(p)
  }

  private send(parts: readonly Uint8Array[]): void {
    if (this.closed || !this.sealer) return
    this.socket.cork()
    this.sealer.seal(parts, (bytes) => this.socket.write(bytes))
    this.socket.uncork()
  }

  private small(type: Type, ...values: number[]): void {
    const msg = Buffer.allocUnsafe(1 + 4 * values.length)
    msg[0] = type
    values.forEach((v, i) => msg.writeUInt32BE(v, 1 + 4 * i))
    this.send([msg])
  }

  bitfield(bits: Uint8Array): void {
    this.send([Buffer.from([Type.Bitfield]), bits])
  }

  have(index: number): void {
    this.small(Type.Have, index)
  }

  request(index: number, offset: number, length: number): void {
    this.small(Type.Request, index, offset, length)
  }

  cancel(index: number, offset: number, length: number): void {
    this.small(Type.Cancel, index, offset, length)
  }

  /** Sends a block; true when its bytes were copied out (sealed), so `parts` may be reused at once. */
  block(index: number, offset: number, parts: readonly Uint8Array[]): boolean {
    const head = Buffer.allocUnsafe(BLOCK_HEAD)
    head[0] = Type.Block
    head.writeUInt32BE(index, 1)
    head.writeUInt32BE(offset, 5)
    this.send([head, ...parts])
    return this.sealer?.copies ?? false
  }

  /** Calls `done` once everything written so far has left for the kernel (or the wire is gone). */
  afterFlush(done: () => void): void {
    if (this.closed || this.socket.destroyed) return done()
    this.socket.write(EMPTY, () => done())
  }

  /** Bytes queued in the socket: senders wait for `drain` past a bound. */
  get queued(): number {
    return this.socket.writableLength
  }

  destroy(reason: string): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.timer)
    this.opener?.dispose()
    this.socket.destroy()
    this.emit('close', reason)
  }
}
