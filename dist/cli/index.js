#!/usr/bin/env node
import { createRequire as __herdCreateRequire } from 'node:module';
import { fileURLToPath as __herdFileURLToPath } from 'node:url';
import { dirname as __herdDirname } from 'node:path';
const require = __herdCreateRequire(import.meta.url);
const __filename = __herdFileURLToPath(import.meta.url);
const __dirname = __herdDirname(__filename);
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:child_process"
const external_node_child_process_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");
;// CONCATENATED MODULE: external "node:os"
const external_node_os_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");
;// CONCATENATED MODULE: external "node:url"
const external_node_url_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");
;// CONCATENATED MODULE: ./build/src/core/exit.js
// How a front end's work process ends once its work and output are done, and what it tells the process
// that supervises it (supervise.ts).
/** The signals the front ends handle (stop cleanly, again to quit at once) and the supervisor passes on. */
const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'];
/**
 * The event loop runs this long more before the exit. Node's shutdown joins V8's helper threads, and a
 * helper still compiling can wait there for a collection only the main thread runs, which never comes
 * (nodejs/node#54918; seen three times in a day here, node 24.21: the report printed, then no exit).
 * While the loop runs, V8 can still serve such a helper. The supervisor ends a process that hangs anyway.
 */
const EXIT_GRACE_MS = 250;
function tell(message) {
    // No supervisor (the work file run directly) or one already gone: nothing to tell.
    if (process.connected)
        process.send?.(message, undefined, {}, () => { });
}
/** Tells the supervisor that this process got `sig`; the front ends' signal handlers call it. */
function heard(sig) {
    tell({ heard: sig });
}
/** Exits with `code` (or process.exitCode) after EXIT_GRACE_MS, even if a library keeps a handle open. */
function leave(code) {
    tell({ done: code ?? Number(process.exitCode ?? 0) });
    // Not process.exit(undefined): an argument, even undefined, replaces process.exitCode (setFailed's 1).
    setTimeout(() => (code === undefined ? process.exit() : process.exit(code)), EXIT_GRACE_MS);
}
/** A supervisor that goes away (killed) takes the run with it: the work stops as if sent SIGTERM. */
function stopWithSupervisor() {
    if (process.connected)
        process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

;// CONCATENATED MODULE: ./build/src/core/supervise.js
// The process a front end's entry starts as: it runs the work in a child node process and exits with the
// child's code. Node 24 can deadlock in its own shutdown after the work is done (nodejs/node#54918: a V8
// compile job waits for a collection only the main thread could run, and the main thread is joining it);
// a push that reported and never exits would hang the user's CI step. This process does no work of its
// own, so nothing of V8's is in flight when it exits.




/** After the child says its work is done and its output written, how long its exit may take before it is ended. */
const EXIT_DEADLINE_MS = 10_000;
/**
 * A signal sent to the process group (a terminal's Ctrl-C, a CI runner stopping the job's group) reaches
 * the child too; one sent to this PID alone does not. The child says which signals it got itself; one it
 * does not mention within this time is passed on, so that each signal reaches the work exactly once.
 */
const HEARD_WITHIN_MS = 1_000;
/**
 * Runs `file` (a name beside `entry`, the caller's import.meta.url) with this process's arguments and exits
 * as it does. `name` starts this process's own messages.
 */
function supervise(file, entry, name) {
    // Resolved here, not at the call: the bundler would turn a literal new URL(file, import.meta.url) into a build-time path.
    const script = (0,external_node_url_namespaceObject.fileURLToPath)(new URL(file, entry));
    const child = (0,external_node_child_process_namespaceObject.spawn)(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
        stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    let reported;
    child.on('error', (err) => {
        process.stderr.write(`${name}: could not start ${script}: ${err.message}\n`);
        process.exit(70);
    });
    child.on('message', (m) => {
        if (m.heard)
            heard(m.heard);
        if (m.done === undefined)
            return;
        reported = m.done;
        setTimeout(() => {
            process.stderr.write(`${name}: node did not exit ${EXIT_DEADLINE_MS / 1000} s after the work ended (nodejs/node#54918); ended it, the result stands\n`);
            child.kill('SIGKILL');
        }, EXIT_DEADLINE_MS).unref();
    });
    child.on('exit', (code, signal) => {
        if (code !== null)
            process.exit(code);
        // Killed: the code it reported if it got that far, else the shell's 128 + signal number.
        process.exit(reported ?? 128 + (external_node_os_namespaceObject.constants.signals[signal] ?? 0));
    });
    // Per signal: this process's signals not yet matched by the child's, each with the timer that passes it on;
    // and the times the child got one that this process had not (yet) got.
    const waiting = new Map();
    const ahead = new Map();
    const recent = (times) => times.filter((t) => Date.now() - t < HEARD_WITHIN_MS);
    function heard(sig) {
        const timer = waiting.get(sig)?.shift();
        if (timer)
            clearTimeout(timer);
        else
            ahead.set(sig, [...recent(ahead.get(sig) ?? []), Date.now()]);
    }
    for (const sig of RELAYED_SIGNALS) {
        process.on(sig, () => {
            const early = recent(ahead.get(sig) ?? []);
            if (early.length > 0)
                return void ahead.set(sig, early.slice(1));
            const timers = waiting.get(sig) ?? [];
            timers.push(setTimeout(() => {
                timers.shift();
                if (child.exitCode === null && child.signalCode === null)
                    child.kill(sig);
            }, HEARD_WITHIN_MS));
            waiting.set(sig, timers);
        });
    }
}

;// CONCATENATED MODULE: ./build/src/cli/index.js
// Entry of the `herd` command: runs herd.js in a child process and exits as it does (see supervise.ts).

supervise('./herd.js', import.meta.url, 'herd');

