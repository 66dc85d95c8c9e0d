// The runner ↔ agent lines: split anywhere, UTF-8 kept whole, and a line without end bounded.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeLine, lineReader, MAX_LINE_BYTES } from '../src/core/protocol.js'

function reader(maxBytes = MAX_LINE_BYTES.toRunner) {
  const messages: unknown[] = []
  const texts: string[] = []
  const tooLong: number[] = []
  const read = lineReader((m) => messages.push(m), (t) => texts.push(t), { maxBytes, onTooLong: (n) => tooLong.push(n) })
  return { read, messages, texts, tooLong }
}

test('lines cut at every byte, a character split between chunks included, arrive whole; other text is text', () => {
  const stream = Buffer.from(encodeLine({ t: 'log', message: 'déjà vu ✓ 𝄞' }) + 'motd: welcome\n\n' + encodeLine({ t: 'alive', pid: 7 }))
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = reader()
    r.read(stream.subarray(0, cut))
    r.read(stream.subarray(cut))
    assert.deepEqual(r.messages, [{ t: 'log', message: 'déjà vu ✓ 𝄞' }, { t: 'alive', pid: 7 }], `cut at ${cut}`)
    assert.deepEqual(r.texts, ['motd: welcome'])
    assert.deepEqual(r.tooLong, [])
  }
})

test('a line at the limit passes; one past it is refused once, the rest of the stream ignored, memory bounded', () => {
  const limit = 1000
  const atLimit = reader(limit)
  const line = encodeLine({ t: 'log', message: 'x'.repeat(limit - 24) })
  assert.equal(Buffer.byteLength(line) - 1, limit)
  atLimit.read(line)
  assert.equal(atLimit.messages.length, 1)

  const endless = reader(limit)
  for (let i = 0; i < 100; i++) endless.read('y'.repeat(64))
  assert.deepEqual(endless.tooLong, [1024], 'refused as soon as the line passed the limit')
  endless.read('\n' + encodeLine({ t: 'alive', pid: 7 }))
  assert.deepEqual(endless.messages, [], 'nothing after it is trusted')
  assert.deepEqual(endless.texts, [])
  assert.deepEqual(endless.tooLong, [1024], 'said once')

  const inOneChunk = reader(limit)
  inOneChunk.read(Buffer.from(`${'z'.repeat(5000)}\n${encodeLine({ t: 'alive', pid: 7 })}`))
  assert.deepEqual(inOneChunk.tooLong, [5000])
  assert.deepEqual(inOneChunk.messages, [])
})

test('the limits: 1 MiB for the agent\'s events, 16 MiB toward the agent (the .torrent of a file of 9 TiB)', () => {
  assert.equal(MAX_LINE_BYTES.toRunner, 1024 * 1024)
  // A start message carries 20 bytes of piece hash per 16 MiB piece, in base64.
  const pieces = (9 * 1024 ** 4) / (16 * 1024 * 1024)
  assert.ok(Math.ceil((pieces * 20) / 3) * 4 + 4096 < MAX_LINE_BYTES.toAgent)
})
