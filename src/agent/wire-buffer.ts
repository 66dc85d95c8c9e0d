// bittorrent-protocol joins its receive buffer into one array on every socket read, so a 16 KiB block
// that arrives in a dozen TCP segments is copied a dozen times over (about 6 copies per block and as
// much garbage). Joining only once a whole message is there copies each block once; the parser is the
// same. Measured on the 8-host benchmark: the join was the agent's largest JavaScript cost after GC.
import Wire from 'bittorrent-protocol'

interface ReceiveState {
  _buffer: Uint8Array[]
  _bufferSize: number
  _parserSize: number
  _cryptoSyncPattern: Uint8Array | null
  _encryptor: { decrypt(data: Uint8Array): Uint8Array } | null
  _processBuffer(): void
}

let installed = false

/** A plain Uint8Array, as the library's own join returns (its parser may slice() it). */
function join(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** Replaces Wire#_write with one that joins the buffered reads once per message. */
export function joinReceivedDataOncePerMessage(): void {
  if (installed) return
  installed = true
  const proto = Wire.prototype as unknown as { _write(this: ReceiveState, data: Uint8Array, cb: (err: Error | null) => void): void }
  if (typeof proto._write !== 'function') throw new Error('bittorrent-protocol changed: Wire#_write is missing')
  proto._write = function (this: ReceiveState, data, cb) {
    if (this._encryptor) data = this._encryptor.decrypt(data)
    this._bufferSize += data.length
    this._buffer.push(data)
    // _processBuffer reads _buffer[0] alone: join when it will parse (a whole message is there) or
    // when it scans for the encryption handshake's sync pattern.
    if (this._buffer.length > 1 && (this._bufferSize >= this._parserSize || this._cryptoSyncPattern)) {
      this._buffer = [join(this._buffer, this._bufferSize)]
    }
    this._processBuffer()
    cb(null)
  }
}
