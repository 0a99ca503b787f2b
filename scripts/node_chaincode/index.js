/*
 * Asset contract on Fabric's Node chaincode runtime (fabric-contract-api / fabric-shim), the
 * Node side of `scripts/bench_ledger.py --target fabric --compare-node`.
 *
 * Written for this project with the semantics of fabric-samples asset-transfer-basic
 * (chaincode-javascript) and of chaincode/contracts/asset.py, so both runtimes do exactly the
 * same ledger work per call: CreateAsset = one GetState (existence check) + one PutState of the
 * asset's JSON with its keys in alphabetical order (the bytes the Python contract writes for the
 * same arguments); ReadAsset = one GetState, the stored JSON returned as it is.
 */
'use strict';

const { Contract } = require('fabric-contract-api');

class AssetContract extends Contract {
    constructor() {
        super('AssetContract');
    }

    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        const existing = await ctx.stub.getState(id);
        if (existing && existing.length > 0) {
            throw new Error(`the asset ${id} already exists`);
        }
        // Integers as the Python contract stores them (its type hints convert the arguments);
        // literal key order = alphabetical, as the Go and Python samples store it.
        const asset = {
            AppraisedValue: toInt(appraisedValue, 'appraisedValue'),
            Color: color,
            ID: id,
            Owner: owner,
            Size: toInt(size, 'size'),
        };
        await ctx.stub.putState(id, Buffer.from(JSON.stringify(asset)));
    }

    async ReadAsset(ctx, id) {
        const data = await ctx.stub.getState(id);
        if (!data || data.length === 0) {
            throw new Error(`the asset ${id} does not exist`);
        }
        return data.toString('utf8');
    }
}

function toInt(value, name) {
    if (!/^-?[0-9]+$/.test(value)) {
        throw new Error(`${name} must be an integer, got ${JSON.stringify(value)}`);
    }
    return Number.parseInt(value, 10);
}

module.exports.contracts = [AssetContract];
