// Entry of the Action's main step (dist/action/main.js); the work is in run.ts.
import { run } from './run.js'
import { leave } from '../core/exit.js'

// Leave once done, even if a library keeps a handle open; the exit code is what setFailed set.
run().finally(() => leave())
