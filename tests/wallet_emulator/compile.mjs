// Compiles the public COCOON worker and proxy contracts (cocoon-contracts/, FunC; see SOURCE.md)
// with @ton-community/func-js (pinned in package.json) and caches the code BOCs under
// node_modules/.cache/cocoon-contracts/, keyed by the sources and the compiler version, so only
// the first run after `npm ci` or a source change pays the ~1 s compile.
//
// As a script (`node compile.mjs`) it prints {"worker": hex, "proxy": hex, "funcVersion": ...}.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cell } from '@ton/core';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCES = join(HERE, 'cocoon-contracts');
const CACHE = join(HERE, 'node_modules', '.cache', 'cocoon-contracts');
const TARGETS = { worker: 'cocoon_worker.fc', proxy: 'cocoon_proxy.fc' };

function sourceFiles(dir, prefix = '') {
    const files = [];
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const rel = prefix + entry.name;
        if (entry.isDirectory()) files.push(...sourceFiles(join(dir, entry.name), rel + '/'));
        else if (entry.name.endsWith('.fc')) files.push(rel);
    }
    return files;
}

function cacheKey() {
    const digest = createHash('sha256');
    const pkg = JSON.parse(readFileSync(join(HERE, 'node_modules', '@ton-community', 'func-js', 'package.json'), 'utf8'));
    digest.update(`func-js ${pkg.version}\n`);
    for (const file of sourceFiles(SOURCES)) {
        digest.update(`${file}\n`).update(readFileSync(join(SOURCES, file)));
    }
    return digest.digest('hex').slice(0, 32);
}

async function compileAll() {
    const { compileFunc, compilerVersion } = await import('@ton-community/func-js');
    const out = { funcVersion: (await compilerVersion()).funcVersion };
    for (const [name, target] of Object.entries(TARGETS)) {
        const result = await compileFunc({
            targets: [target],
            sources: (path) => readFileSync(join(SOURCES, path), 'utf8'),
        });
        if (result.status !== 'ok') throw new Error(`FunC compilation of ${target} failed: ${result.message}`);
        out[name] = Buffer.from(result.codeBoc, 'base64').toString('hex');
    }
    return out;
}

/** {worker: Cell, proxy: Cell, hex: {worker, proxy, funcVersion}}, compiled once per source change. */
export async function loadCodes() {
    const file = join(CACHE, `${cacheKey()}.json`);
    let hex;
    if (existsSync(file)) {
        hex = JSON.parse(readFileSync(file, 'utf8'));
    } else {
        hex = await compileAll();
        mkdirSync(CACHE, { recursive: true });
        writeFileSync(file, JSON.stringify(hex));
    }
    return {
        worker: Cell.fromBoc(Buffer.from(hex.worker, 'hex'))[0],
        proxy: Cell.fromBoc(Buffer.from(hex.proxy, 'hex'))[0],
        hex,
    };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
    process.stdout.write(JSON.stringify((await loadCodes()).hex) + '\n');
}
