// Runs wallet external messages built by the app through @ton/sandbox (the official TVM emulator
// with the current mainnet config) and reports what the wallet contract did with each.
//
// Input (argv[2], JSON): {"scenarios": [{"name", "now", "fund", "steps": [{"boc": hex}]}]}.
// Every scenario starts a fresh blockchain, funds the wallet address (the destination of the
// first message) with a non-bounceable transfer, then sends each step in order.
// Output (stdout, JSON): {"scenarios": [{"name", "steps": [result]}]} where a result is
// {"accepted": true, "inHash", "outMessages": [{dest, value, bounce, comment}], "balance",
//  "aborted", "computeExitCode"} or {"accepted": false, "exitCode"}.
import { readFileSync } from 'node:fs';
import { Blockchain } from '@ton/sandbox';
import { beginCell, Cell, loadMessage, storeMessage } from '@ton/core';

function commentOf(body) {
    const s = body.beginParse();
    if (s.remainingBits < 32 || s.loadUint(32) !== 0) return null;
    return s.loadStringTail();
}

async function runScenario(scenario) {
    const blockchain = await Blockchain.create();
    blockchain.now = scenario.now;
    const first = loadMessage(Cell.fromBoc(Buffer.from(scenario.steps[0].boc, 'hex'))[0].beginParse());
    const wallet = first.info.dest;
    const funder = await blockchain.treasury('funder');
    await funder.send({ to: wallet, value: BigInt(scenario.fund), bounce: false });
    const steps = [];
    for (const step of scenario.steps) {
        const cell = Cell.fromBoc(Buffer.from(step.boc, 'hex'))[0];
        try {
            const result = await blockchain.sendMessage(cell);
            const tx = result.transactions[0];
            const description = tx.description;
            const compute = description.computePhase;
            steps.push({
                accepted: true,
                inHash: beginCell().store(storeMessage(tx.inMessage)).endCell().hash().toString('hex'),
                aborted: description.aborted,
                computeExitCode: compute.type === 'vm' ? compute.exitCode : null,
                balance: (await blockchain.getContract(wallet)).balance.toString(),
                outMessages: [...tx.outMessages.values()].map((m) => ({
                    dest: m.info.dest.toRawString(),
                    value: m.info.value.coins.toString(),
                    bounce: m.info.bounce,
                    comment: commentOf(m.body),
                })),
            });
        } catch (error) {
            if (error.exitCode === undefined) throw error;
            steps.push({ accepted: false, exitCode: error.exitCode });
        }
    }
    return { name: scenario.name, steps };
}

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const scenarios = [];
for (const scenario of input.scenarios) {
    scenarios.push(await runScenario(scenario));
}
process.stdout.write(JSON.stringify({ scenarios }));
