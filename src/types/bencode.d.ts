declare module 'bencode' {
  const bencode: {
    encode(data: unknown): Uint8Array
    decode(data: Uint8Array, encoding?: string): any
  }
  export default bencode
}
