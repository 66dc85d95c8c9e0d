// The Action's main step's work (main.ts runs it in a child process); the work itself is in run.ts.
import { run } from './run.js'
import { leave, reportToSupervisor } from '../core/exit.js'

reportToSupervisor()
// Leave once done, even if a library keeps a handle open; the exit code is what setFailed set.
run().finally(() => leave())
