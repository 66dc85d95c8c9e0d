declare module 'bittorrent-protocol' {
  // Only what the agent's receive-buffer fix touches; the rest is used through webtorrent.
  export default class Wire {
    protected _write(data: Uint8Array, cb: (err: Error | null) => void): void
  }
}
