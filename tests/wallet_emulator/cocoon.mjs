// Runs COCOON worker-contract scenarios through @ton/sandbox (current TVM and mainnet config) with
// the public FunC worker and proxy contracts (cocoon-contracts/, compiled by compile.mjs).
//
// `node cocoon.mjs --codes` prints the compiled code BOCs: {"worker": hex, "proxy": hex, ...}.
// `node cocoon.mjs < scenarios.json` runs scenarios. Input:
//   {"scenarios": [{"name", "now",
//     "params": {params_version, unique_id, is_test, price_per_token, worker_fee_per_token,
//                prompt_/cached_/completion_/reasoning_tokens_price_multiplier,
//                proxy_delay_before_close, client_delay_before_close, min_proxy_stake,
//                min_client_stake} (the root config's names; other fields are ignored),
//     "proxy": {"address"?: raw, "owner": raw, "publicKey": hex, "root": raw, "balance": nano},
//     "worker": {"owner": raw},
//     "steps": [{"from": raw, "to": "worker" | "proxy" | raw, "value": nano, "body": hex BOC | null,
//                "deploy": bool (attach the worker's state_init; to is then the worker),
//                "bounce": bool (default: not deploy)}]}]}
// Amounts are decimal strings of nanotons. The proxy contract is placed at "address" with the
// given balance (or at its state-init address when absent); the worker contract is deployed by a
// "deploy" step: a message with state_init and no body, as the C++ TonScWrapper::deploy sends it.
// Output: {"codes": {...}, "scenarios": [{"name", "workerAddress", "proxyAddress",
//   "proxyStateInitAddress" (where the proxy's code and data would deploy), "steps": [{
//   "accepted": compute exit 0 and not aborted on the first contract, "exitCode", "bounced": a bounce
//   came back to the sender, "transactions": [{account, from, value, op, inBounced, exitCode,
//   aborted, actionResultCode, outMessages: [{dest, value, op, bounce, bounced}]}],
//   "worker": {"status", "balance", "state", "tokens"} , "proxy": {"balance", "storedBalance"}}]}]}
import { readFileSync } from 'node:fs';
import { Blockchain, createShardAccount, internal } from '@ton/sandbox';
import { Address, beginCell, Cell, contractAddress } from '@ton/core';
import { loadCodes } from './compile.mjs';

// utils.fc pack_cocoon_params (struct version 3); worker params carry no code, proxy params carry
// the worker and client code (RootContractConfig::serialize_params_cell(6) in the C++ reference).
function paramsCell(p, { workerCode = null, clientCode = null } = {}) {
    const n = (field) => BigInt(p[field]); // numbers or decimal strings
    return beginCell()
        .storeUint(3, 8)
        .storeUint(n('params_version'), 32)
        .storeUint(n('unique_id'), 32)
        .storeBit(Boolean(p.is_test))
        .storeCoins(n('price_per_token'))
        .storeCoins(n('worker_fee_per_token'))
        .storeUint(n('prompt_tokens_price_multiplier'), 32)
        .storeUint(n('cached_tokens_price_multiplier'), 32)
        .storeUint(n('completion_tokens_price_multiplier'), 32)
        .storeUint(n('reasoning_tokens_price_multiplier'), 32)
        .storeUint(n('proxy_delay_before_close'), 32)
        .storeUint(n('client_delay_before_close'), 32)
        .storeCoins(n('min_proxy_stake'))
        .storeCoins(n('min_client_stake'))
        .storeMaybeRef(null)
        .storeMaybeRef(workerCode)
        .storeMaybeRef(clientCode)
        .endCell();
}

function proxyData(proxy, params, workerCode) {
    return beginCell()
        .storeAddress(Address.parse(proxy.owner))
        .storeBuffer(Buffer.from(proxy.publicKey, 'hex'), 32)
        .storeAddress(Address.parse(proxy.root))
        .storeUint(0, 2) // state
        .storeCoins(0n) // balance
        .storeCoins(0n) // stake
        .storeUint(0, 32) // unlock_ts
        .storeRef(paramsCell(params, { workerCode }))
        .endCell();
}

function workerData(owner, proxyAddress, publicKey, params) {
    return beginCell()
        .storeAddress(Address.parse(owner))
        .storeAddress(proxyAddress)
        .storeBuffer(Buffer.from(publicKey, 'hex'), 32)
        .storeUint(0, 2) // state
        .storeUint(0n, 64) // tokens
        .storeRef(paramsCell(params))
        .endCell();
}

function opOf(body) {
    if (!body) return null;
    const s = body.beginParse();
    return s.remainingBits >= 32 ? s.loadUint(32) : null;
}

function describe(tx) {
    const info = tx.inMessage?.info;
    const description = tx.description;
    const compute = description.computePhase;
    return {
        account: new Address(0, Buffer.from(tx.address.toString(16).padStart(64, '0'), 'hex')).toRawString(),
        from: info?.type === 'internal' ? info.src.toRawString() : null,
        value: info?.type === 'internal' ? info.value.coins.toString() : null,
        op: tx.inMessage ? opOf(tx.inMessage.body) : null,
        inBounced: info?.type === 'internal' ? info.bounced : false,
        exitCode: compute.type === 'vm' ? compute.exitCode : null,
        aborted: description.aborted,
        actionResultCode: description.actionPhase ? description.actionPhase.resultCode : null,
        outMessages: [...tx.outMessages.values()].map((m) => ({
            dest: m.info.dest.toRawString(),
            value: m.info.value.coins.toString(),
            op: opOf(m.body),
            bounce: m.info.bounce,
            bounced: m.info.bounced,
        })),
    };
}

async function workerView(blockchain, address) {
    const contract = await blockchain.getContract(address);
    const view = { status: contract.accountState?.type ?? 'nonexist', balance: contract.balance.toString() };
    if (view.status !== 'active') return { ...view, state: null, tokens: null };
    const { stackReader } = await blockchain.runGetMethod(address, 'get_cocoon_worker_data');
    stackReader.readAddress(); // owner
    stackReader.readAddress(); // proxy
    stackReader.readBigNumber(); // proxy public key
    return { ...view, state: stackReader.readNumber(), tokens: stackReader.readBigNumber().toString() };
}

async function proxyView(blockchain, address) {
    const contract = await blockchain.getContract(address);
    const { stackReader } = await blockchain.runGetMethod(address, 'get_cocoon_proxy_data');
    stackReader.skip(4); // owner, public key, root, state
    return { balance: contract.balance.toString(), storedBalance: stackReader.readBigNumber().toString() };
}

async function runScenario(scenario, codes) {
    const blockchain = await Blockchain.create();
    blockchain.now = scenario.now;
    const data = proxyData(scenario.proxy, scenario.params, codes.worker);
    const proxyInitAddress = contractAddress(0, { code: codes.proxy, data });
    const proxyAddress = scenario.proxy.address ? Address.parse(scenario.proxy.address) : proxyInitAddress;
    await blockchain.setShardAccount(
        proxyAddress,
        createShardAccount({
            address: proxyAddress,
            code: codes.proxy,
            data,
            balance: BigInt(scenario.proxy.balance),
        }),
    );
    const init = {
        code: codes.worker,
        data: workerData(scenario.worker.owner, proxyAddress, scenario.proxy.publicKey, scenario.params),
    };
    const workerAddress = contractAddress(0, init);
    const steps = [];
    for (const step of scenario.steps) {
        const from = Address.parse(step.from);
        const deploy = Boolean(step.deploy);
        const named = { worker: workerAddress, proxy: proxyAddress };
        const to = deploy ? workerAddress : named[step.to] ?? Address.parse(step.to);
        const message = internal({
            from,
            to,
            value: BigInt(step.value),
            body: step.body ? Cell.fromBoc(Buffer.from(step.body, 'hex'))[0] : undefined,
            stateInit: deploy ? init : undefined,
            bounce: step.bounce ?? !deploy,
        });
        const result = await blockchain.sendMessage(message);
        const transactions = result.transactions.map(describe);
        const first = transactions[0];
        steps.push({
            accepted: first.exitCode === 0 && !first.aborted,
            exitCode: first.exitCode,
            bounced: transactions.some((t) => t.account === from.toRawString() && t.inBounced),
            transactions,
            worker: await workerView(blockchain, workerAddress),
            proxy: await proxyView(blockchain, proxyAddress),
        });
    }
    return {
        name: scenario.name,
        workerAddress: workerAddress.toRawString(),
        proxyAddress: proxyAddress.toRawString(),
        proxyStateInitAddress: proxyInitAddress.toRawString(),
        steps,
    };
}

const codes = await loadCodes();
if (process.argv.includes('--codes')) {
    process.stdout.write(JSON.stringify(codes.hex) + '\n');
} else {
    const input = JSON.parse(readFileSync(0, 'utf8'));
    const scenarios = [];
    for (const scenario of input.scenarios) scenarios.push(await runScenario(scenario, codes));
    process.stdout.write(JSON.stringify({ codes: { funcVersion: codes.hex.funcVersion }, scenarios }) + '\n');
}
