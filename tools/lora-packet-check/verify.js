#!/usr/bin/env node
// Check every PHYPayload of a simulator PHY log (`nodectl simulate --phy-log FILE`) with
// lora-packet, a LoRaWAN implementation independent of the simulator's.
//
//   node tools/lora-packet-check/verify.js phy.jsonl
//
// Prints one JSON verdict per frame on stdout (no keys in it), a summary on stderr, and
// exits 0 when every frame verifies, 1 when one does not, 2 on a usage or input error.
// Per frame: data frames: DevAddr, direction and FCnt as logged, MIC with the NwkSKey and
// the 32-bit FCnt, FRMPayload decrypted (AppSKey, or NwkSKey on FPort 0) equal to the
// logged application payload. Join-request: MIC with the AppKey, EUIs and DevNonce.
// Join-accept: decrypted with the AppKey, MIC, fields, and the session keys lora-packet
// derives (generateSessionKeys10) equal to the logged ones.
"use strict";

const fs = require("fs");
const lp = require("lora-packet");

const hex = (s) => Buffer.from(s, "hex");
const beInt = (buf) => parseInt(buf.toString("hex") || "0", 16);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

function fcntMSBytes(fcnt) {
  // lora-packet appends these two bytes after the 16 LSB in B0/A_i: wire (little-endian) order.
  const b = Buffer.alloc(2);
  b.writeUInt16LE(Math.floor(fcnt / 65536) & 0xffff);
  return b;
}

function checkData(rec, pkt, v) {
  const nwk = hex(rec.nwk_skey);
  const app = hex(rec.app_skey);
  const up = rec.direction === "up";
  if (pkt.getDir() !== rec.direction) v.errors.push(`direction ${pkt.getDir()}`);
  if (!same(pkt.DevAddr.toString("hex"), rec.dev_addr)) v.errors.push("DevAddr differs");
  if (pkt.getFCnt() !== (rec.fcnt & 0xffff)) v.errors.push(`FCnt on air ${pkt.getFCnt()}`);
  const msb = fcntMSBytes(rec.fcnt);
  v.mic_ok = lp.verifyMIC(pkt, nwk, undefined, msb);
  if (!v.mic_ok) v.errors.push("MIC does not verify");
  const port = pkt.getFPort();
  if (port !== rec.port) v.errors.push(`FPort ${port}, logged ${rec.port}`);
  let plain = Buffer.alloc(0);
  if (port !== null && pkt.FRMPayload && pkt.FRMPayload.length) {
    plain = lp.decrypt(pkt, app, nwk, msb);
  }
  v.payload = plain.toString("hex");
  v.payload_ok = same(v.payload, rec.payload);
  if (!v.payload_ok) v.errors.push("decrypted FRMPayload differs from the logged payload");
  v.ack = pkt.getFCtrlACK();
  v.adr = pkt.getFCtrlADR();
  v.confirmed = pkt.isConfirmed();
  if (!up) v.fopts = (pkt.FOpts || Buffer.alloc(0)).toString("hex");
}

function checkJoinRequest(rec, pkt, v) {
  const appKey = hex(rec.app_key);
  v.mic_ok = lp.verifyMIC(pkt, undefined, appKey);
  if (!v.mic_ok) v.errors.push("MIC does not verify");
  if (!same(pkt.DevEUI.toString("hex"), rec.dev_eui)) v.errors.push("DevEUI differs");
  if (!same(pkt.AppEUI.toString("hex"), rec.join_eui)) v.errors.push("JoinEUI differs");
  if (beInt(pkt.DevNonce) !== rec.dev_nonce) v.errors.push("DevNonce differs");
}

function checkJoinAccept(rec, pkt, v) {
  const appKey = hex(rec.app_key);
  const ja = lp.fromWire(lp.decryptJoinAccept(pkt, appKey));
  v.mic_ok = lp.verifyMIC(ja, undefined, appKey);
  if (!v.mic_ok) v.errors.push("MIC does not verify");
  if (beInt(ja.AppNonce) !== rec.join_nonce) v.errors.push("JoinNonce differs");
  if (!same(ja.NetID.toString("hex"), rec.net_id)) v.errors.push("NetID differs");
  if (!same(ja.DevAddr.toString("hex"), rec.dev_addr)) v.errors.push("DevAddr differs");
  const devNonce = Buffer.alloc(2);
  devNonce.writeUInt16BE(rec.dev_nonce);
  const keys = lp.generateSessionKeys10(appKey, ja.NetID, ja.AppNonce, devNonce);
  v.keys_ok = same(keys.NwkSKey.toString("hex"), rec.nwk_skey) &&
    same(keys.AppSKey.toString("hex"), rec.app_skey);
  if (!v.keys_ok) v.errors.push("derived session keys differ from the logged ones");
}

function verdict(rec, line) {
  const v = { line, type: rec.type, direction: rec.direction, dev_eui: rec.dev_eui,
              fcnt: rec.fcnt === undefined ? null : rec.fcnt, errors: [] };
  if (!rec.phy) {
    v.errors.push("no PHYPayload (the network had no session for the device)");
  } else {
    try {
      const pkt = lp.fromWire(hex(rec.phy));
      v.mtype = pkt.getMType();
      if (v.mtype === "Join Request") checkJoinRequest(rec, pkt, v);
      else if (v.mtype === "Join Accept") checkJoinAccept(rec, pkt, v);
      else if (/Data (Up|Down)$/.test(v.mtype)) checkData(rec, pkt, v);
      else v.errors.push(`unexpected MType ${v.mtype}`);
    } catch (e) {
      v.errors.push(`lora-packet: ${e.message}`);
    }
  }
  v.ok = v.errors.length === 0;
  return v;
}

function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write("usage: node verify.js PHYLOG.jsonl\n");
    return 2;
  }
  let text;
  try {
    text = fs.readFileSync(argv[0], "utf8");
  } catch (e) {
    process.stderr.write(`verify.js: cannot read ${argv[0]}: ${e.message}\n`);
    return 2;
  }
  let bad = 0;
  let n = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    let rec;
    try {
      rec = JSON.parse(lines[i]);
    } catch (e) {
      process.stderr.write(`verify.js: line ${i + 1} is not JSON: ${e.message}\n`);
      return 2;
    }
    const v = verdict(rec, i + 1);
    n += 1;
    if (!v.ok) bad += 1;
    process.stdout.write(JSON.stringify(v) + "\n");
  }
  process.stderr.write(`verify.js: ${n - bad} of ${n} frames verify with lora-packet\n`);
  return bad ? 1 : 0;
}

// A reader that stops early (`| head`) is not an error of the check.
process.stdout.on("error", (e) => process.exit(e.code === "EPIPE" ? process.exitCode || 0 : 2));
process.exitCode = main(process.argv.slice(2));
