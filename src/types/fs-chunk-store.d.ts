declare module 'fs-chunk-store' {
  export default class FSChunkStore {
    constructor(chunkLength: number, opts: { path?: string; length?: number; files?: unknown[] })
  }
}
