#!/usr/bin/env node
// Entry of the `herd` command: runs herd.js in a child process and exits as it does (see supervise.ts).
import { supervise } from '../core/supervise.js'

supervise('./herd.js', import.meta.url, 'herd')
