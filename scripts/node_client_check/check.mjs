// Interoperability check: drive MIP's devnet with the official @hyperledger/fabric-gateway
// Node client, exactly as an application on real Fabric would.
//
//   node check.mjs --connection DIR/connection.json [--org HospitalMSP] [--user User1]
//
// Submits CreateAsset, evaluates ReadAsset, submits EmitEvent and reads that chaincode event
// back from the block its commit status reports. Prints "PASS" (exit 0) or "FAIL: why"
// (exit 1). Transaction ids and asset ids are printed; no key material ever is.

import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TextDecoder } from 'node:util';

function parseArgs(argv) {
    const options = { org: 'HospitalMSP', user: 'User1', connection: process.env.MIP_CONNECTION };
    for (let i = 0; i < argv.length; i += 2) {
        const key = argv[i].replace(/^--/, '');
        if (!(key in options) || argv[i + 1] === undefined) {
            throw new Error(`unknown or incomplete option ${argv[i]}`);
        }
        options[key] = argv[i + 1];
    }
    if (!options.connection) {
        throw new Error('--connection PATH (or MIP_CONNECTION) is required');
    }
    return options;
}

function loadProfile(path, orgName, userName) {
    const profile = JSON.parse(readFileSync(path, 'utf8'));
    const base = dirname(resolve(path));
    const org = profile.organizations?.[orgName]
        ?? Object.values(profile.organizations ?? {}).find((o) => o.mspId === orgName);
    if (!org) throw new Error(`no organization ${orgName} in ${path}`);
    const user = org.users?.[userName];
    if (!user) throw new Error(`no user ${userName} in ${orgName}`);
    const read = (p) => readFileSync(resolve(base, p));
    return {
        channel: profile.channel,
        chaincode: profile.chaincode,
        mspId: org.mspId ?? orgName,
        endpoint: org.peerEndpoint,
        serverNameOverride: org.serverNameOverride,
        tlsRootCert: read(org.tlsRootCertPath),
        cert: read(user.certPath),
        key: read(user.keyPath),
    };
}

async function main() {
    const options = parseArgs(process.argv.slice(2));
    const cfg = loadProfile(options.connection, options.org, options.user);
    const channelOptions = cfg.serverNameOverride
        ? { 'grpc.ssl_target_name_override': cfg.serverNameOverride }
        : {};
    const client = new grpc.Client(cfg.endpoint, grpc.credentials.createSsl(cfg.tlsRootCert), channelOptions);
    const gateway = connect({
        client,
        identity: { mspId: cfg.mspId, credentials: cfg.cert },
        signer: signers.newPrivateKeySigner(createPrivateKey(cfg.key)),
        hash: hash.sha256,
        evaluateOptions: () => ({ deadline: Date.now() + 5000 }),
        endorseOptions: () => ({ deadline: Date.now() + 15000 }),
        submitOptions: () => ({ deadline: Date.now() + 5000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
    });
    const utf8 = new TextDecoder();
    try {
        const network = gateway.getNetwork(cfg.channel);
        const contract = network.getContract(cfg.chaincode);
        const assetId = `node-${randomBytes(6).toString('hex')}`;

        await contract.submitTransaction('CreateAsset', assetId, 'teal', '7', 'NodeClient', '123');
        console.log(`submitted CreateAsset ${assetId}`);

        const asset = JSON.parse(utf8.decode(await contract.evaluateTransaction('ReadAsset', assetId)));
        if (asset.ID !== assetId || asset.Color !== 'teal' || asset.Size !== 7 || asset.AppraisedValue !== 123) {
            throw new Error(`ReadAsset returned ${JSON.stringify(asset)}`);
        }
        console.log('evaluated ReadAsset: asset matches');

        const eventPayload = `payload-${assetId}`;
        const commit = await contract.submitAsync('EmitEvent', { arguments: ['NodeCheck', eventPayload] });
        const status = await commit.getStatus();
        if (!status.successful) {
            throw new Error(`EmitEvent failed to commit: code ${status.code}`);
        }
        console.log(`EmitEvent ${commit.getTransactionId()} committed in block ${status.blockNumber}`);

        const events = await network.getChaincodeEvents(cfg.chaincode, { startBlock: status.blockNumber });
        const timer = setTimeout(() => events.close(), 15000);
        let found;
        try {
            for await (const event of events) {
                if (event.transactionId === commit.getTransactionId()) {
                    found = event;
                    break;
                }
            }
        } finally {
            clearTimeout(timer);
            events.close();
        }
        if (!found) throw new Error('chaincode event not received within 15 s');
        if (found.eventName !== 'NodeCheck' || utf8.decode(found.payload) !== eventPayload) {
            throw new Error(`unexpected event ${found.eventName}`);
        }
        console.log(`received chaincode event ${found.eventName} from block ${found.blockNumber}`);
    } finally {
        gateway.close();
        client.close();
    }
}

main().then(
    () => {
        console.log('PASS');
        process.exit(0);
    },
    (err) => {
        console.log(`FAIL: ${err?.message ?? err}`);
        if (err?.details?.length) {
            for (const d of err.details) console.log(`  - ${d.address} (${d.mspId}): ${d.message}`);
        }
        process.exit(1);
    },
);
