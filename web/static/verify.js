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
//   3. each leaf is RFC 8785 canonical JSON {"event", "signature", "station_id"} (with
//      "captured_by", a GLN, when the station's participant captured for the principal at
//      the event's GLN under a capture grant), about the pack in the address bar, and the station's Ed25519 signature verifies over the RFC 8785
//      bytes of "event" (key from /api/v1/stations/{id});
//   4. what the page shows of each step (type, time, place, station) is what was signed;
//   5. each leaf's inclusion proof leads to the checkpoint's root (RFC 9162 §2.1.3.2, leaf
//      hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right));
//   6. each version of the lot's record is checked like a step (a manufacturer's station
//      signed it, for this pack's GTIN and lot, shown as signed, in the log), and each
//      document it names is downloaded from this service and hashed (SHA-256): a file that
//      does not match the signed hash and size is named.
// A leaf captured on a participant's API token (EPCIS or FHIR: {"epcis" | "fhir", "event",
// "participant"}, no signature) has no station signature to check: steps 3 to 5 without the
// signature, and the page says so.
//   7. each point of the temperature chart is a reading whose leaf is the message its sensor
//      signed (Ed25519 over the RFC 8785 bytes of "reading", key from /api/v1/sensors/{id}),
//      showing the temperature and time the sensor signed, with an inclusion proof like a step.
// A case's or pallet's page (/00/{sscc}) is checked the same way: its steps are those naming
// it or a container it was packed into (steps 2 to 5); it has no lot record or chart.
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

  /** The pack the address bar names (GS1 Digital Link: /01/{gtin}/.../21/{serial}), or
   * /cn/{code}: a China drug traceability code is the serial of a unit whose GTIN its
   * manufacturer mapped the code's drug code to. That mapping is not on the log, so there the
   * GTIN is the service's word; the serial, the whole code, is still checked. A case or pallet
   * (/00/{sscc}) is named by its SSCC alone: no pack's step is its own. */
  const scannedPack = (unit) => {
    const segments = location.pathname.split("/").map(decodeURIComponent);
    if (segments.length === 3 && segments[1] === "cn") return { gtin: unit.gtin, serial: segments[2] };
    if (segments.length === 3 && segments[1] === "00") return { gtin: null, serial: null, sscc: segments[2] };
    const at = segments.indexOf("01");
    const pairs = {};
    for (let i = at; at >= 0 && i + 1 < segments.length; i += 2) pairs[segments[i]] = segments[i + 1];
    return { gtin: (pairs["01"] || "").padStart(14, "0"), serial: pairs["21"] };
  };

  const deviceKeys = new Map();
  /** Every key a signing device (a station or a sensor) ever had, from its public record:
   * an old event or reading was signed by the key of its time. */
  const signingKeys = (kind, id) => {
    const name = `${kind}/${id}`;
    if (!deviceKeys.has(name)) {
      deviceKeys.set(
        name,
        fetch(`/api/v1/${kind}s/${encodeURIComponent(id)}`, {
          headers: { Accept: "application/json" },
        })
          .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
          .then((body) => {
            if (body[`${kind}_id`] !== id) throw new Error(`another ${kind}`);
            return Promise.all(body.keys.map((k) => ed25519Key(fromBase64(k.public_key, `the ${kind} key`))));
          }),
      );
    }
    return deviceKeys.get(name);
  };
  const stationKey = (id) => signingKeys("station", id);

  /** The SSCCs the pack (or case) was put into, directly or inside another case or pallet,
   * read from the pack events in order: events naming those containers moved it too. Each
   * of those pack events is then checked like any other step. */
  const containersOf = (events, pack) => {
    const found = new Set(pack.sscc ? [pack.sscc] : []);
    const me = canonical(pack.sscc ? { sscc: pack.sscc } : { gtin: pack.gtin, serial: pack.serial });
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

  /** The lot the pack was commissioned in, as its (signed or token-captured) commission
   * leaf says; undefined when the page carries no commission step. */
  const commissionedLot = (events) => {
    for (const event of events) {
      try {
        const signed = JSON.parse(new TextDecoder().decode(fromBase64(event.leaf, "the leaf"))).event;
        if (signed && signed.type === "commission") return signed.lot;
      } catch {
        continue;
      }
    }
    return undefined;
  };

  const SHOWN = { type: "type", event_time: "time", gln: "gln", station_id: "station" };
  const TOKEN_SOURCES = ["epcis", "fhir"];
  const keysOf = (object) => canonical(Object.keys(object).sort());
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

  /** The leaf bytes and the envelope they hold, which must be RFC 8785 canonical JSON. */
  const readLeaf = (base64Leaf) => {
    const leaf = fromBase64(base64Leaf, "the leaf");
    const leafText = new TextDecoder("utf-8", { fatal: true }).decode(leaf);
    const envelope = JSON.parse(leafText);
    if (canonical(envelope) !== leafText) throw new Error("the leaf is not RFC 8785 canonical");
    if (!isObject(envelope) || !isObject(envelope.event)) throw new Error("the event is not an object");
    return { leaf, envelope, signed: envelope.event };
  };

  /** A station's envelope {"event", "signature", "station_id"} (and "captured_by" under a
   * capture grant), or a leaf captured on a
   * participant's API token: {"epcis" | "fhir": the request as sent, "event", "participant"}. */
  const leafKind = (envelope) => {
    const keys = keysOf(envelope);
    const captured = typeof envelope.captured_by === "string";
    if (keys === (captured ? '["captured_by","event","signature","station_id"]' : '["event","signature","station_id"]')) {
      if (envelope.event.station_id !== envelope.station_id) throw new Error("two station ids");
      return "signed";
    }
    const token = TOKEN_SOURCES.some((source) => keys === canonical([source, "event", "participant"].sort()));
    if (!token || typeof envelope.participant !== "string" || "station_id" in envelope.event) {
      throw new Error("the leaf is neither a signed envelope nor a token-captured event");
    }
    return "token";
  };

  /** The station's Ed25519 signature over the RFC 8785 bytes of the signed event. */
  const checkSignature = async (envelope, signed, fail) => {
    let keys;
    try {
      keys = await stationKey(signed.station_id);
    } catch {
      throw fail("station_key", { station: signed.station_id });
    }
    let authentic = false;
    try {
      const signature = fromBase64(envelope.signature, "the station signature");
      const message = utf8.encode(canonical(signed));
      for (const key of keys) authentic = authentic || (await ed25519Verify(key, signature, message));
    } catch {
      authentic = false;
    }
    if (!authentic) throw fail("station", { station: signed.station_id });
  };

  /** "ok" if the leaf's inclusion proof leads to the checkpoint's root, "pending" if the leaf
   * is newer than the checkpoint. */
  const checkInclusion = async (entry, leaf, checkpoint, fail) => {
    const index = BigInt(entry.leaf_index);
    if (index >= checkpoint.size && entry.inclusion_proof === null) return "pending";
    if (!Array.isArray(entry.inclusion_proof)) throw fail("inclusion");
    try {
      const proof = entry.inclusion_proof.map(fromHex);
      const root = await rootFromInclusionProof(await leafHash(leaf), index, checkpoint.size, proof);
      if (!equal(root, checkpoint.root)) throw new Error("another root");
    } catch {
      throw fail("inclusion");
    }
    return "ok";
  };

  const STEP_FAILURES = {
    leaf: "f_leaf",
    station_key: "f_station_key",
    station: "f_station",
    readable: "f_readable",
    inclusion: "f_inclusion",
  };

  /** Check one step; its status is "ok", "unsigned" (a token-captured event, in the log) or
   * "pending"; throws a Failure. */
  const checkStep = async (event, n, item, checkpoint, pack) => {
    const fail = (kind, params = {}) => new Failure(STEP_FAILURES[kind], { n, ...params });
    let leaf;
    let envelope;
    let signed;
    let kind;
    try {
      ({ leaf, envelope, signed } = readLeaf(event.leaf));
      kind = leafKind(envelope);
    } catch (error) {
      throw fail("leaf", { detail: error.message });
    }
    const ours = signed.gtin === pack.gtin && signed.serial === pack.serial;
    const itsContainer = !("gtin" in signed) && pack.containers.has(signed.sscc);
    if (!ours && !itsContainer) {
      throw new Failure("f_unit", { n, detail: `${signed.gtin ?? signed.sscc} / ${signed.serial}` });
    }
    if (kind === "signed") await checkSignature(envelope, signed, fail);
    // What the page shows and what the server's JSON says must both be what was recorded.
    for (const [field, attribute] of Object.entries(SHOWN)) {
      const recorded = signed[field] ?? null;
      if ((event[field] ?? null) !== recorded || item.dataset[attribute] !== (recorded ?? "")) {
        throw fail("readable", { field });
      }
    }
    const destination = signed.destination_gln ?? null;
    if ((event.destination_gln ?? null) !== destination || item.dataset.destination !== (destination ?? "")) {
      throw fail("readable", { field: "destination_gln" });
    }
    if (String(event.leaf_index) !== item.dataset.leafIndex) {
      throw fail("readable", { field: "leaf_index" });
    }
    const included = await checkInclusion(event, leaf, checkpoint, fail);
    const status = included === "ok" && kind === "token" ? "unsigned" : included;
    return { status, participant: envelope.participant };
  };

  // ------------------------------------------------------------------ the lot's documents

  const LOT_FAILURES = {
    leaf: "f_lot_leaf",
    station_key: "f_lot_station",
    station: "f_lot_station",
    readable: "f_lot_readable",
    inclusion: "f_lot_inclusion",
  };
  const LOT_SHOWN = { version: "version", event_time: "time", gln: "gln", station_id: "station" };
  // Each signed document field, and the data attribute the page shows it in.
  const DOCUMENT_SHOWN = { kind: "kind", filename: "name", sha256: "sha256", size: "size" };

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  /** A lot record: signed by the manufacturer's station, about this pack's GTIN and lot, shown
   * as signed (its documents too), and included in the log. Returns the inclusion status and
   * the signed documents, to be downloaded and hashed. */
  const checkLotRecord = async (record, item, checkpoint, pack) => {
    const fail = (kind, params = {}) => new Failure(LOT_FAILURES[kind], { n: record.version, ...params });
    let leaf;
    let envelope;
    let signed;
    try {
      ({ leaf, envelope, signed } = readLeaf(record.leaf));
      if (leafKind(envelope) !== "signed") throw new Error("a lot record is signed by a station");
      if (signed.type !== "lot_record") throw new Error(`a ${signed.type} event`);
      if (signed.gtin !== pack.gtin || signed.lot !== pack.lot) {
        throw new Error(`about ${signed.gtin} lot ${signed.lot}, not this pack's lot`);
      }
      if (!Array.isArray(signed.documents)) throw new Error("no document list");
    } catch (error) {
      throw fail("leaf", { detail: error.message });
    }
    await checkSignature(envelope, signed, fail);
    for (const [field, attribute] of Object.entries(LOT_SHOWN)) {
      if (record[field] !== signed[field] || item.dataset[attribute] !== String(signed[field])) {
        throw fail("readable", { field });
      }
    }
    if (String(record.leaf_index) !== item.dataset.leafIndex) throw fail("readable", { field: "leaf_index" });
    const shown = Array.from(item.querySelectorAll("li[data-sha256]"));
    if (record.documents.length !== signed.documents.length || shown.length !== signed.documents.length) {
      throw fail("readable", { field: "documents" });
    }
    signed.documents.forEach((document_, i) => {
      const page = shown[i].dataset;
      const link = shown[i].querySelector("a");
      for (const [field, attribute] of Object.entries(DOCUMENT_SHOWN)) {
        if (record.documents[i][field] !== document_[field] || page[attribute] !== String(document_[field])) {
          throw fail("readable", { field: `documents.${field}` });
        }
      }
      if (!link || link.getAttribute("href") !== `/api/v1/documents/${document_.sha256}`) {
        throw fail("readable", { field: "documents.url" });
      }
    });
    return { included: await checkInclusion(record, leaf, checkpoint, fail), documents: signed.documents };
  };

  /** Download a document from this service, hash it (SHA-256) and compare it with the hash
   * and size the manufacturer signed. */
  const checkDocument = async (signedDocument) => {
    const name = signedDocument.filename;
    let bytes;
    try {
      const response = await fetch(`/api/v1/documents/${encodeURIComponent(signedDocument.sha256)}`);
      if (!response.ok) throw new Error(String(response.status));
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch {
      throw new Failure("f_document_fetch", { name });
    }
    if (bytes.length !== signedDocument.size || hex(await sha256(bytes)) !== signedDocument.sha256) {
      throw new Failure("f_document", { name });
    }
  };

  /** Check the alert that quarantined the pack: its leaf is the canonical JSON of
   * {"alert": {...}} recording the rule the page names, and its inclusion proof leads to the
   * checkpoint's root. Returns "ok" or "pending"; throws a Failure. */
  const checkAlert = async (quarantine, checkpoint) => {
    let leaf;
    try {
      leaf = fromBase64(quarantine.leaf, "the alert's leaf");
      const leafText = new TextDecoder("utf-8", { fatal: true }).decode(leaf);
      const recorded = JSON.parse(leafText);
      if (canonical(recorded) !== leafText) throw new Error("the leaf is not RFC 8785 canonical");
      const alert = recorded.alert;
      if (canonical(Object.keys(recorded)) !== '["alert"]' || alert === null || typeof alert !== "object") {
        throw new Error("the leaf is not an alert");
      }
      if (alert.rule !== quarantine.rule) throw new Error("the leaf records another rule");
    } catch (error) {
      throw new Failure("f_alert", { detail: error.message });
    }
    const index = BigInt(quarantine.leaf_index);
    if (index >= checkpoint.size && quarantine.inclusion_proof === null) return "pending";
    try {
      const proof = quarantine.inclusion_proof.map(fromHex);
      const root = await rootFromInclusionProof(await leafHash(leaf), index, checkpoint.size, proof);
      if (!equal(root, checkpoint.root)) throw new Error("another root");
    } catch {
      throw new Failure("f_alert", { detail: "its inclusion proof does not lead to the checkpoint's root" });
    }
    return "ok";
  };

  // ------------------------------------------------------------------ temperature readings

  /** One charted reading: its leaf is the RFC 8785 message {"reading", "sensor_id",
   * "signature"} of this reading, the sensor's Ed25519 signature over the RFC 8785 bytes of
   * "reading" verifies (key from /api/v1/sensors/{id}), the chart shows the temperature and
   * time the sensor signed, and the leaf is in the log. Returns "ok" or "pending". */
  const checkReading = async (entry, point, n, checkpoint) => {
    const where = { n, sensor: entry.sensor_id, seq: entry.seq };
    const fail = (detail) => new Failure("f_reading", { ...where, detail });
    let leaf;
    let reading;
    let signature;
    try {
      leaf = fromBase64(entry.leaf, "the leaf");
      const leafText = new TextDecoder("utf-8", { fatal: true }).decode(leaf);
      const message = JSON.parse(leafText);
      if (canonical(message) !== leafText) throw new Error("the leaf is not RFC 8785 canonical");
      if (!isObject(message) || keysOf(message) !== '["reading","sensor_id","signature"]' || !isObject(message.reading)) {
        throw new Error("the leaf is not a signed reading");
      }
      ({ reading, signature } = message);
      if (message.sensor_id !== entry.sensor_id || reading.sensor_id !== entry.sensor_id || reading.seq !== entry.seq) {
        throw new Error("the leaf is another reading");
      }
    } catch (error) {
      throw fail(error.message);
    }
    let keys;
    try {
      keys = await signingKeys("sensor", entry.sensor_id);
    } catch {
      throw fail("the sensor's key could not be fetched");
    }
    let authentic = false;
    try {
      const bytes = fromBase64(signature, "the sensor signature");
      const signed = utf8.encode(canonical(reading));
      for (const key of keys) authentic = authentic || (await ed25519Verify(key, bytes, signed));
    } catch {
      authentic = false;
    }
    if (!authentic) throw fail("the sensor's signature does not verify");
    if (Number(point.dataset.celsius) !== reading.temperature_c) {
      throw new Failure("f_reading_value", { ...where, shown: point.dataset.celsius, signed: reading.temperature_c });
    }
    if (Date.parse(point.dataset.time) !== Date.parse(reading.time)) {
      throw new Failure("f_reading_time", { ...where, shown: point.dataset.time, signed: reading.time });
    }
    return checkInclusion(entry, leaf, checkpoint, () => fail("its inclusion proof does not lead to the checkpoint's root"));
  };

  /** Every point of the temperature chart against the reading it draws; failures are
   * collected (each names its reading). */
  const checkReadings = async (checkpoint, failures) => {
    const readings = data.readings || [];
    const points = Array.from(document.querySelectorAll("#temperature circle[data-leaf-index]"));
    // Numbered in time order (the series' order), not in the order the chart draws them.
    const byIndex = new Map(readings.map((entry, i) => [String(entry.leaf_index), { entry, n: i + 1 }]));
    const counts = { checked: 0, pending: 0 };
    if (points.length !== readings.length || byIndex.size !== readings.length) {
      failures.push(new Failure("f_reading_count", { shown: points.length, signed: readings.length }));
    }
    for (const point of points) {
      const found = byIndex.get(point.dataset.leafIndex);
      try {
        if (!found) {
          throw new Failure("f_reading", { n: "?", sensor: "?", seq: "?", detail: `no signed reading at leaf ${point.dataset.leafIndex}` });
        }
        byIndex.delete(point.dataset.leafIndex); // a reading is drawn once
        const included = await checkReading(found.entry, point, found.n, checkpoint);
        counts[included === "pending" ? "pending" : "checked"] += 1;
      } catch (error) {
        point.classList.add("failed");
        failures.push(error);
      }
    }
    return counts;
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

  /** Check every version of the lot record, then download and hash every document it
   * names; failures are collected (each names its version or document). */
  const checkLotRecords = async (checkpoint, pack, failures) => {
    const records = data.lot_records || [];
    const items = Array.from(document.querySelectorAll("#lot-records > li[data-leaf-index]"));
    if (items.length !== records.length) {
      failures.push(new Failure("f_lot_count", { shown: items.length, signed: records.length }));
    }
    const counts = { versions: 0, documents: 0, pending: 0 };
    for (const [i, record] of records.entries()) {
      const item = items[i] || document.createElement("li");
      let signed;
      try {
        signed = await checkLotRecord(record, item, checkpoint, pack);
      } catch (error) {
        failures.push(error);
        mark(items[i], "failed", describe(error));
        continue;
      }
      if (signed.included === "pending") {
        counts.pending += 1;
      } else {
        counts.versions += 1;
        mark(items[i], "checked", say("step_checked"));
      }
      const shown = item.querySelectorAll("li[data-sha256]");
      for (const [j, signedDocument] of signed.documents.entries()) {
        try {
          await checkDocument(signedDocument);
          counts.documents += 1;
          mark(shown[j], "checked", say("document_checked"));
        } catch (error) {
          failures.push(error);
          mark(shown[j], "failed", describe(error));
        }
      }
    }
    return counts;
  };

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
    const pack = scannedPack(data.unit);
    pack.containers = containersOf(data.events, pack);
    if (data.container) {
      if (data.container.sscc !== pack.sscc) {
        failures.push(new Failure("f_unit", { n: 0, detail: `SSCC ${data.container.sscc}` }));
      }
    } else {
      if (data.unit.gtin !== pack.gtin || data.unit.serial !== pack.serial) {
        failures.push(new Failure("f_unit", { n: 0, detail: `${data.unit.gtin} / ${data.unit.serial}` }));
      }
      const commissioned = commissionedLot(data.events);
      if (commissioned !== undefined && commissioned !== data.unit.lot) {
        failures.push(new Failure("f_unit", { n: 0, detail: `lot ${data.unit.lot} / ${commissioned}` }));
      }
      pack.lot = data.unit.lot;
    }
    let checked = 0;
    let pending = 0;
    let unsigned = 0;
    for (const [i, event] of data.events.entries()) {
      try {
        const step = await checkStep(event, i + 1, items[i] || document.createElement("li"), checkpoint, pack);
        if (step.status === "pending") {
          pending += 1;
        } else {
          checked += 1;
          unsigned += step.status === "unsigned" ? 1 : 0;
          const words = step.status === "unsigned"
            ? say("step_unsigned", { participant: step.participant })
            : say("step_checked");
          mark(items[i], "checked", words);
        }
      } catch (error) {
        failures.push(error);
        mark(items[i], "failed", describe(error));
      }
    }
    const lots = await checkLotRecords(checkpoint, pack, failures);
    pending += lots.pending;
    let alertChecked = false;
    if (data.quarantine) {
      try {
        alertChecked = (await checkAlert(data.quarantine, checkpoint)) === "ok";
        if (!alertChecked) pending += 1;
      } catch (error) {
        failures.push(error);
      }
    }
    const temperatures = await checkReadings(checkpoint, failures);
    pending += temperatures.pending;
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
    if (alertChecked) lines.push(say("alert_checked", { index: data.quarantine.leaf_index }));
    if (cosigned.unknown) lines.push(say("unknown_signers", { n: cosigned.unknown }));
    if (unsigned) lines.push(say("unsigned", { n: unsigned }));
    if (lots.versions) lines.push(say("lot_checked", lots));
    if (temperatures.checked) lines.push(say("readings_checked", { n: temperatures.checked }));
    if (pending) lines.push(say("pending", { n: pending }));
    show(pending ? "pending" : "passed", say(pending ? "partial" : "passed", facts), lines);
  };

  run().catch((error) => show("failed", say("failed"), [describe(error)]));
})();
