// medtrace: check a verify page's proof in the browser, with WebCrypto only.
//
// The server states a verdict; this script checks, without trusting the server beyond the
// log key printed on the page, that every step the page shows is what a station signed and
// that the log has committed to it:
//   1. the log key is a C2SP signed-note verifier key (Ed25519, type 0x01) whose key ID is
//      SHA-256(name || 0x0A || 0x01 || key)[:4];
//   2. the checkpoint (c2sp.org/tlog-checkpoint) is signed by that key (c2sp.org/signed-note)
//      and its origin is the key's name; cosignatures by known witnesses
//      (c2sp.org/tlog-cosignature, Ed25519 type 0x04) verify too;
//   3. each leaf is RFC 8785 canonical JSON {"event", "signature", "station_id"}, about the
//      pack in the address bar, and the station's Ed25519 signature verifies over the RFC 8785
//      bytes of "event" (key from /api/v1/stations/{id});
//   4. what the page shows of each step (type, time, place, station) is what was signed;
//   5. each leaf's inclusion proof leads to the checkpoint's root (RFC 9162 §2.1.3.2, leaf
//      hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right)).
// Any failure turns the page red and says what failed.
"use strict";

(() => {
  const box = document.getElementById("proof");
  const dataElement = document.getElementById("proof-data");
  const textElement = document.getElementById("proof-text");
  if (!box || !dataElement || !textElement) return;
  const data = JSON.parse(dataElement.textContent);
  const text = JSON.parse(textElement.textContent);
  const utf8 = new TextEncoder();

  const say = (key, params = {}) =>
    text[key].replace(/\{(\w+)\}/g, (_, name) => String(params[name]));

  class Failure extends Error {
    constructor(key, params = {}) {
      super(key);
      this.key = key;
      this.params = params;
    }
  }

  // ------------------------------------------------------------------ bytes and encodings

  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  };

  const equal = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);

  /** Standard padded base64 (RFC 4648 §4), refusing non-canonical text. */
  const fromBase64 = (value, what) => {
    if (typeof value !== "string" || value.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw new Error(`${what} is not base64`);
    }
    const binary = atob(value);
    if (btoa(binary) !== value) throw new Error(`${what} is not canonical base64`);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  };

  const fromHex = (value) => {
    if (typeof value !== "string" || !/^[0-9a-fA-F]{64}$/.test(value)) {
      throw new Error("a proof hash is not 64 hex digits");
    }
    return Uint8Array.from(value.match(/../g), (pair) => parseInt(pair, 16));
  };

  /** RFC 8785 (JCS): keys sorted by UTF-16 code units, ECMAScript number and string forms. */
  const canonical = (value) => {
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (value !== null && typeof value === "object") {
      const members = Object.keys(value)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`);
      return `{${members.join(",")}}`;
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new Error("a number is not finite");
    }
    return JSON.stringify(value);
  };

  // ------------------------------------------------------------------ WebCrypto

  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));
  const ed25519Key = (raw) =>
    crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  const ed25519Verify = (key, signature, message) =>
    signature.length === 64 && crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);

  // ------------------------------------------------------------------ RFC 9162 §2.1.3.2

  /** The root an inclusion proof leads to, or an Error if the proof has the wrong shape. */
  const rootFromInclusionProof = async (hash, index, size, proof) => {
    if (index >= size) throw new Error("leaf index beyond the tree size");
    let fn = index;
    let sn = size - 1n;
    let r = hash;
    for (const p of proof) {
      if (sn === 0n) throw new Error("inclusion proof too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("inclusion proof too short");
    return r;
  };

  // ------------------------------------------------------------------ C2SP signed notes

  /** A verifier key <name>+<hex key ID>+base64(type || key), its key ID checked. */
  const parseVkey = async (vkey, type) => {
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new Error("expected <name>+<key id>+<key>");
    const name = vkey.slice(0, first);
    const id = vkey.slice(first + 1, second);
    const blob = fromBase64(vkey.slice(second + 1), "the key");
    if (!/^[0-9a-f]{8}$/.test(id)) throw new Error("the key id is not 8 hex digits");
    if (blob.length !== 33 || blob[0] !== type) throw new Error("not an Ed25519 key");
    const keyId = await noteKeyId(name, type, blob.subarray(1));
    if (Array.from(keyId, (b) => b.toString(16).padStart(2, "0")).join("") !== id) {
      throw new Error("the key id does not match the name and key");
    }
    return { name, keyId, key: await ed25519Key(blob.subarray(1)) };
  };

  const noteKeyId = async (name, type, raw) =>
    (await sha256(concat(utf8.encode(`${name}\n`), Uint8Array.of(type), raw))).subarray(0, 4);

  /** Split a signed note into its text and its (name, key ID, signature) lines. */
  const parseNote = (note) => {
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x09\x0b-\x1f]/.test(note)) throw new Error("control character in the note");
    const split = note.lastIndexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) throw new Error("no signature block");
    const lines = note.slice(split + 2, -1).split("\n");
    const signatures = lines.map((line) => {
      const match = /^\u2014 ([^\s+]+) (\S+)$/.exec(line);
      if (!match) throw new Error("malformed signature line");
      const blob = fromBase64(match[2], "a signature");
      if (blob.length < 5) throw new Error("signature too short");
      return { name: match[1], keyId: blob.subarray(0, 4), body: blob.subarray(4) };
    });
    return { text: note.slice(0, split + 1), signatures };
  };

  /** The checkpoint body: origin, decimal size, base64 root (c2sp.org/tlog-checkpoint). */
  const parseCheckpoint = (body) => {
    const lines = body.slice(0, -1).split("\n");
    if (lines.length < 3 || !lines[0]) throw new Error("fewer than three lines");
    if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("the size is not a number");
    const root = fromBase64(lines[2], "the root hash");
    if (root.length !== 32) throw new Error("the root hash is not 32 bytes");
    return { origin: lines[0], size: BigInt(lines[1]), root };
  };

  const signedBy = (signature, key) =>
    signature.name === key.name && equal(signature.keyId, key.keyId);

  /** Every line by the log key must verify, and there must be one. */
  const checkLogSignature = async (note, logKey) => {
    const mine = note.signatures.filter((s) => signedBy(s, logKey));
    const message = utf8.encode(note.text);
    for (const s of mine) {
      if (!(await ed25519Verify(logKey.key, s.body, message))) throw new Failure("f_checkpoint_sig");
    }
    if (!mine.length) throw new Failure("f_checkpoint_sig");
  };

  /** Cosignatures (c2sp.org/tlog-cosignature): key ID || u64 time || Ed25519 signature. */
  const checkCosignatures = async (note, logKey, witnessKeys) => {
    const witnessed = [];
    let unknown = 0;
    for (const s of note.signatures) {
      if (signedBy(s, logKey)) continue;
      const witness = witnessKeys.find((w) => signedBy(s, w));
      if (!witness) {
        unknown += 1;
        continue;
      }
      if (s.body.length !== 72) throw new Failure("f_witness", { name: witness.name });
      const time = new DataView(s.body.buffer, s.body.byteOffset, 8).getBigUint64(0);
      const message = utf8.encode(`cosignature/v1\ntime ${time}\n${note.text}`);
      if (!(await ed25519Verify(witness.key, s.body.subarray(8), message))) {
        throw new Failure("f_witness", { name: witness.name });
      }
      witnessed.push(witness.name);
    }
    return { witnessed, unknown };
  };

  // ------------------------------------------------------------------ the steps

  /** The pack the address bar names (GS1 Digital Link: /01/{gtin}/.../21/{serial}). */
  const scannedPack = () => {
    const segments = location.pathname.split("/").map(decodeURIComponent);
    const at = segments.indexOf("01");
    const pairs = {};
    for (let i = at; at >= 0 && i + 1 < segments.length; i += 2) pairs[segments[i]] = segments[i + 1];
    return { gtin: (pairs["01"] || "").padStart(14, "0"), serial: pairs["21"] };
  };

  const stationKeys = new Map();
  const stationKey = (id) => {
    if (!stationKeys.has(id)) {
      stationKeys.set(
        id,
        fetch(`/api/v1/stations/${encodeURIComponent(id)}`, {
          headers: { Accept: "application/json" },
        })
          .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
          .then((body) => {
            if (body.station_id !== id) throw new Error("another station");
            // Every key the station ever had: an old event was signed by the key of its time.
            return Promise.all(body.keys.map((k) => ed25519Key(fromBase64(k.public_key, "the station key"))));
          }),
      );
    }
    return stationKeys.get(id);
  };

  /** The SSCCs the pack was put into, directly or inside another case or pallet, read from
   * the pack events in order: events naming those containers moved the pack too. Each of
   * those pack events is then checked like any other step. */
  const containersOf = (events, pack) => {
    const found = new Set();
    const me = canonical({ gtin: pack.gtin, serial: pack.serial });
    for (const event of events) {
      let signed;
      try {
        signed = JSON.parse(new TextDecoder().decode(fromBase64(event.leaf, "the leaf"))).event;
      } catch {
        continue;
      }
      if (!signed || signed.type !== "pack" || !Array.isArray(signed.children)) continue;
      for (const child of signed.children) {
        if (canonical(child) === me || (child && found.has(child.sscc))) found.add(signed.sscc);
      }
    }
    return found;
  };

  const SHOWN = { type: "type", event_time: "time", gln: "gln", station_id: "station" };

  /** Check one step; returns "ok" or "pending", throws a Failure. */
  const checkStep = async (event, n, item, checkpoint, pack) => {
    let leaf;
    let signed;
    let envelope;
    try {
      leaf = fromBase64(event.leaf, "the leaf");
      const leafText = new TextDecoder("utf-8", { fatal: true }).decode(leaf);
      envelope = JSON.parse(leafText);
      if (canonical(envelope) !== leafText) throw new Error("the leaf is not RFC 8785 canonical");
      if (canonical(Object.keys(envelope).sort()) !== '["event","signature","station_id"]') {
        throw new Error("the leaf is not a signed envelope");
      }
      signed = envelope.event;
      if (signed === null || typeof signed !== "object" || Array.isArray(signed)) {
        throw new Error("the event is not an object");
      }
      if (signed.station_id !== envelope.station_id) throw new Error("two station ids");
    } catch (error) {
      throw new Failure("f_leaf", { n, detail: error.message });
    }
    const ours = signed.gtin === pack.gtin && signed.serial === pack.serial;
    const itsContainer = !("gtin" in signed) && pack.containers.has(signed.sscc);
    if (!ours && !itsContainer) {
      throw new Failure("f_unit", { n, detail: `${signed.gtin ?? signed.sscc} / ${signed.serial}` });
    }
    let keys;
    try {
      keys = await stationKey(signed.station_id);
    } catch {
      throw new Failure("f_station_key", { n, station: signed.station_id });
    }
    let authentic = false;
    try {
      const signature = fromBase64(envelope.signature, "the station signature");
      const message = utf8.encode(canonical(signed));
      for (const key of keys) authentic = authentic || (await ed25519Verify(key, signature, message));
    } catch {
      authentic = false;
    }
    if (!authentic) throw new Failure("f_station", { n, station: signed.station_id });
    // What the page shows and what the server's JSON says must both be what was signed.
    for (const [field, attribute] of Object.entries(SHOWN)) {
      if (event[field] !== signed[field] || item.dataset[attribute] !== signed[field]) {
        throw new Failure("f_readable", { n, field });
      }
    }
    const destination = signed.destination_gln ?? null;
    if ((event.destination_gln ?? null) !== destination || item.dataset.destination !== (destination ?? "")) {
      throw new Failure("f_readable", { n, field: "destination_gln" });
    }
    if (String(event.leaf_index) !== item.dataset.leafIndex) {
      throw new Failure("f_readable", { n, field: "leaf_index" });
    }
    const index = BigInt(event.leaf_index);
    if (index >= checkpoint.size && event.inclusion_proof === null) return "pending";
    if (!Array.isArray(event.inclusion_proof)) throw new Failure("f_inclusion", { n });
    try {
      const proof = event.inclusion_proof.map(fromHex);
      const root = await rootFromInclusionProof(await leafHash(leaf), index, checkpoint.size, proof);
      if (!equal(root, checkpoint.root)) throw new Error("another root");
    } catch {
      throw new Failure("f_inclusion", { n });
    }
    return "ok";
  };

  // ------------------------------------------------------------------ showing the result

  const head = document.getElementById("proof-head");
  const details = document.getElementById("proof-details");

  const show = (status, title, lines = []) => {
    box.dataset.proofStatus = status;
    head.textContent = title;
    details.replaceChildren(
      ...lines.map((line) => {
        const li = document.createElement("li");
        li.textContent = line;
        return li;
      }),
    );
    document.body.classList.toggle("proof-failed", status === "failed");
    if (status === "failed") document.getElementById("verdict-word").textContent = say("verdict_failed");
    const short = document.getElementById("verdict-proof");
    short.hidden = status !== "passed";
    short.textContent = status === "passed" ? say("verdict_checked") : "";
  };

  const mark = (item, status, words) => {
    if (!item) return;
    item.classList.add(status);
    const note = document.createElement("div");
    note.className = "muted proof-mark";
    note.textContent = `${status === "checked" ? "✓" : "✗"} ${words}`;
    item.append(note);
  };

  const describe = (error) =>
    error instanceof Failure ? say(error.key, error.params) : say("f_error", { detail: error.message });

  const run = async () => {
    if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) {
      show("unavailable", say("unavailable"));
      return;
    }
    if (!data.checkpoint) {
      show("pending", say("no_checkpoint"));
      return;
    }
    show("checking", say("checking"));
    let logKey;
    const printed = document.getElementById("log-key").textContent.trim();
    try {
      logKey = await parseVkey(printed, 1);
    } catch (error) {
      throw new Failure("f_log_key", { detail: error.message });
    }
    const witnessKeys = await Promise.all(
      Array.from(document.querySelectorAll("#witness-keys code"), (el) =>
        parseVkey(el.textContent.trim(), 4),
      ),
    );
    let note;
    let checkpoint;
    try {
      note = parseNote(data.checkpoint);
      checkpoint = parseCheckpoint(note.text);
    } catch (error) {
      throw new Failure("f_checkpoint", { detail: error.message });
    }
    if (checkpoint.origin !== logKey.name) {
      throw new Failure("f_origin", { origin: checkpoint.origin, name: logKey.name });
    }
    await checkLogSignature(note, logKey);
    const cosigned = await checkCosignatures(note, logKey, witnessKeys);

    const items = Array.from(document.querySelectorAll("#timeline li[data-leaf-index]"));
    const failures = [];
    if (items.length !== data.events.length) {
      failures.push(new Failure("f_count", { shown: items.length, signed: data.events.length }));
    }
    const pack = scannedPack();
    pack.containers = containersOf(data.events, pack);
    if (data.unit.gtin !== pack.gtin || data.unit.serial !== pack.serial) {
      failures.push(new Failure("f_unit", { n: 0, detail: `${data.unit.gtin} / ${data.unit.serial}` }));
    }
    let checked = 0;
    let pending = 0;
    for (const [i, event] of data.events.entries()) {
      try {
        if ((await checkStep(event, i + 1, items[i] || document.createElement("li"), checkpoint, pack)) === "ok") {
          checked += 1;
          mark(items[i], "checked", say("step_checked"));
        } else {
          pending += 1;
        }
      } catch (error) {
        failures.push(error);
        mark(items[i], "failed", describe(error));
      }
    }
    if (failures.length) {
      show("failed", say("failed"), failures.map(describe));
      return;
    }
    const facts = {
      checked,
      events: data.events.length,
      size: checkpoint.size.toString(),
      origin: checkpoint.origin,
    };
    const lines = [
      cosigned.witnessed.length
        ? say("witnessed", { witnesses: cosigned.witnessed.join(", ") })
        : say("not_witnessed"),
    ];
    if (cosigned.unknown) lines.push(say("unknown_signers", { n: cosigned.unknown }));
    if (pending) lines.push(say("pending", { n: pending }));
    show(pending ? "pending" : "passed", say(pending ? "partial" : "passed", facts), lines);
  };

  run().catch((error) => show("failed", say("failed"), [describe(error)]));
})();
